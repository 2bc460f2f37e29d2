-- The real PostgreSQL tables of a Backend.AI 20.09.29 manager (pg_dump --schema-only of a
-- database made by its own `backend.ai mgr schema oneshot`, alembic head 8679d0a7e22b;
-- docs/backendai-db.md#the-schema), preceded by the one table the
-- dump references but does not include (keypair_resource_policies, columns as in
-- ai/backend/manager/models/resource_policy.py @20.09.29).
CREATE TYPE public.defaultforunspecified AS ENUM ('LIMITED', 'UNLIMITED');
CREATE TABLE public.keypair_resource_policies (
    name character varying(256) NOT NULL PRIMARY KEY,
    created_at timestamp with time zone DEFAULT now(),
    default_for_unspecified public.defaultforunspecified NOT NULL,
    total_resource_slots jsonb NOT NULL,
    max_concurrent_sessions integer NOT NULL,
    max_containers_per_session integer NOT NULL,
    max_vfolder_count integer NOT NULL,
    max_vfolder_size bigint NOT NULL,
    idle_timeout bigint NOT NULL,
    allowed_vfolder_hosts character varying[] NOT NULL
);
-- Backend.AI manager 20.9.29 schema (alembic head 8679d0a7e22b), created in an empty PostgreSQL 15.18 DB
-- by `backend.ai mgr schema oneshot` , then
-- pg_dump --schema-only --no-owner --no-privileges -t public.domains -t public.agents -t public.kernels -t public.keypairs -t public.users -t public.groups -t public.scaling_groups (SET lines and \restrict lines removed).
-- pg_dump -t does not emit the enum types / extension the tables use; they are recreated here first:
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE TYPE public.agentstatus AS ENUM ('ALIVE', 'LOST', 'RESTARTING', 'TERMINATED');
CREATE TYPE public.kernelstatus AS ENUM ('PENDING', 'SCHEDULED', 'PREPARING', 'BUILDING', 'PULLING', 'RUNNING', 'RESTARTING', 'RESIZING', 'SUSPENDED', 'TERMINATING', 'TERMINATED', 'ERROR', 'CANCELLED');
CREATE TYPE public.sessionresult AS ENUM ('UNDEFINED', 'SUCCESS', 'FAILURE');
CREATE TYPE public.sessiontypes AS ENUM ('INTERACTIVE', 'BATCH');
CREATE TYPE public.userrole AS ENUM ('superadmin', 'admin', 'user', 'monitor');
CREATE TYPE public.userstatus AS ENUM ('active', 'inactive', 'deleted', 'before-verification');
-- NOTE: foreign keys to tables NOT in this dump (their ADD CONSTRAINT fails when loaded alone): keypairs -> keypair_resource_policies
--
-- PostgreSQL database dump
--

--
-- Name: agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agents (
    id character varying(64) NOT NULL,
    status public.agentstatus NOT NULL,
    status_changed timestamp with time zone,
    region character varying(64) NOT NULL,
    scaling_group character varying(64) DEFAULT 'default'::character varying NOT NULL,
    schedulable boolean DEFAULT true NOT NULL,
    available_slots jsonb NOT NULL,
    occupied_slots jsonb NOT NULL,
    addr character varying(128) NOT NULL,
    first_contact timestamp with time zone DEFAULT now(),
    lost_at timestamp with time zone,
    version character varying(64) NOT NULL,
    compute_plugins jsonb NOT NULL
);

--
-- Name: domains; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.domains (
    name character varying(64) NOT NULL,
    description character varying(512),
    is_active boolean,
    created_at timestamp with time zone DEFAULT now(),
    modified_at timestamp with time zone DEFAULT now(),
    total_resource_slots jsonb,
    allowed_vfolder_hosts character varying[] NOT NULL,
    allowed_docker_registries character varying[] NOT NULL,
    integration_id character varying(512),
    dotfiles bytea NOT NULL
);

--
-- Name: groups; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.groups (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    name character varying(64) NOT NULL,
    description character varying(512),
    is_active boolean,
    created_at timestamp with time zone DEFAULT now(),
    modified_at timestamp with time zone DEFAULT now(),
    integration_id character varying(512),
    domain_name character varying(64) NOT NULL,
    total_resource_slots jsonb,
    allowed_vfolder_hosts character varying[] NOT NULL,
    dotfiles bytea NOT NULL
);

--
-- Name: kernels; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.kernels (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    session_id uuid NOT NULL,
    session_creation_id character varying(32),
    session_name character varying(64),
    session_type public.sessiontypes DEFAULT 'INTERACTIVE'::public.sessiontypes NOT NULL,
    cluster_mode character varying(16) DEFAULT 'SINGLE_NODE'::character varying NOT NULL,
    cluster_size integer NOT NULL,
    cluster_role character varying(16) NOT NULL,
    cluster_idx integer NOT NULL,
    cluster_hostname character varying(64) NOT NULL,
    scaling_group character varying(64),
    agent character varying(64),
    agent_addr character varying(128),
    domain_name character varying(64) NOT NULL,
    group_id uuid NOT NULL,
    user_uuid uuid NOT NULL,
    access_key character varying(20),
    image character varying(512),
    registry character varying(512),
    tag character varying(64),
    container_id character varying(64),
    occupied_slots jsonb NOT NULL,
    occupied_shares jsonb NOT NULL,
    environ character varying[],
    mounts character varying[],
    mount_map jsonb,
    attached_devices jsonb,
    resource_opts jsonb,
    bootstrap_script character varying(16384),
    kernel_host character varying(128),
    repl_in_port integer NOT NULL,
    repl_out_port integer NOT NULL,
    stdin_port integer NOT NULL,
    stdout_port integer NOT NULL,
    service_ports jsonb,
    preopen_ports integer[],
    created_at timestamp with time zone DEFAULT now(),
    terminated_at timestamp with time zone,
    starts_at timestamp with time zone,
    status public.kernelstatus DEFAULT 'PENDING'::public.kernelstatus NOT NULL,
    status_changed timestamp with time zone,
    status_info character varying,
    status_data jsonb,
    startup_command text,
    result public.sessionresult DEFAULT 'UNDEFINED'::public.sessionresult NOT NULL,
    internal_data jsonb,
    container_log bytea,
    num_queries bigint,
    last_stat jsonb
);

--
-- Name: keypairs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.keypairs (
    user_id character varying(256),
    access_key character varying(20) NOT NULL,
    secret_key character varying(40),
    is_active boolean,
    is_admin boolean DEFAULT false,
    created_at timestamp with time zone DEFAULT now(),
    modified_at timestamp with time zone DEFAULT now(),
    last_used timestamp with time zone,
    concurrency_used integer,
    rate_limit integer,
    num_queries integer DEFAULT 0,
    ssh_public_key character varying(750),
    ssh_private_key character varying(2000),
    "user" uuid NOT NULL,
    resource_policy character varying(256) NOT NULL,
    dotfiles bytea NOT NULL,
    bootstrap_script character varying(65536) NOT NULL
);

--
-- Name: scaling_groups; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.scaling_groups (
    name character varying(64) NOT NULL,
    description character varying(512),
    is_active boolean,
    created_at timestamp with time zone DEFAULT now(),
    driver character varying(64) NOT NULL,
    driver_opts jsonb NOT NULL,
    scheduler character varying(64) NOT NULL,
    scheduler_opts jsonb NOT NULL
);

--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    uuid uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    username character varying(64),
    email character varying(64) NOT NULL,
    password character varying,
    need_password_change boolean,
    full_name character varying(64),
    description character varying(500),
    status public.userstatus NOT NULL,
    status_info character varying,
    created_at timestamp with time zone DEFAULT now(),
    modified_at timestamp with time zone DEFAULT now(),
    integration_id character varying(512),
    domain_name character varying(64),
    role public.userrole
);

--
-- Name: agents pk_agents; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT pk_agents PRIMARY KEY (id);

--
-- Name: domains pk_domains; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.domains
    ADD CONSTRAINT pk_domains PRIMARY KEY (name);

--
-- Name: groups pk_groups; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups
    ADD CONSTRAINT pk_groups PRIMARY KEY (id);

--
-- Name: kernels pk_kernels; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kernels
    ADD CONSTRAINT pk_kernels PRIMARY KEY (id);

--
-- Name: keypairs pk_keypairs; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.keypairs
    ADD CONSTRAINT pk_keypairs PRIMARY KEY (access_key);

--
-- Name: scaling_groups pk_scaling_groups; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scaling_groups
    ADD CONSTRAINT pk_scaling_groups PRIMARY KEY (name);

--
-- Name: users pk_users; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT pk_users PRIMARY KEY (uuid);

--
-- Name: groups uq_groups_name_domain_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups
    ADD CONSTRAINT uq_groups_name_domain_name UNIQUE (name, domain_name);

--
-- Name: users uq_users_username; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT uq_users_username UNIQUE (username);

--
-- Name: ix_agents_region; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_region ON public.agents USING btree (region);

--
-- Name: ix_agents_scaling_group; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_scaling_group ON public.agents USING btree (scaling_group);

--
-- Name: ix_agents_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_agents_status ON public.agents USING btree (status);

--
-- Name: ix_groups_domain_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_groups_domain_name ON public.groups USING btree (domain_name);

--
-- Name: ix_kernels_cluster_role; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_cluster_role ON public.kernels USING btree (cluster_role);

--
-- Name: ix_kernels_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_created_at ON public.kernels USING btree (created_at);

--
-- Name: ix_kernels_result; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_result ON public.kernels USING btree (result);

--
-- Name: ix_kernels_scaling_group; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_scaling_group ON public.kernels USING btree (scaling_group);

--
-- Name: ix_kernels_sess_id_role; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_sess_id_role ON public.kernels USING btree (session_id, cluster_role);

--
-- Name: ix_kernels_session_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_session_id ON public.kernels USING btree (session_id);

--
-- Name: ix_kernels_session_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_session_name ON public.kernels USING btree (session_name);

--
-- Name: ix_kernels_session_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_session_type ON public.kernels USING btree (session_type);

--
-- Name: ix_kernels_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_status ON public.kernels USING btree (status);

--
-- Name: ix_kernels_status_changed; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_status_changed ON public.kernels USING btree (status_changed);

--
-- Name: ix_kernels_status_role; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_status_role ON public.kernels USING btree (status, cluster_role);

--
-- Name: ix_kernels_terminated_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_terminated_at ON public.kernels USING btree (terminated_at);

--
-- Name: ix_kernels_unique_sess_token; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_kernels_unique_sess_token ON public.kernels USING btree (access_key, session_name) WHERE ((status <> ALL (ARRAY['TERMINATED'::public.kernelstatus, 'CANCELLED'::public.kernelstatus])) AND ((cluster_role)::text = 'main'::text));

--
-- Name: ix_kernels_updated_order; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_kernels_updated_order ON public.kernels USING btree (GREATEST('created_at'::text, 'terminated_at'::text, 'status_changed'::text));

--
-- Name: ix_keypairs_is_active; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keypairs_is_active ON public.keypairs USING btree (is_active);

--
-- Name: ix_keypairs_is_admin; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keypairs_is_admin ON public.keypairs USING btree (is_admin);

--
-- Name: ix_keypairs_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keypairs_user_id ON public.keypairs USING btree (user_id);

--
-- Name: ix_scaling_groups_is_active; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_scaling_groups_is_active ON public.scaling_groups USING btree (is_active);

--
-- Name: ix_users_domain_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_users_domain_name ON public.users USING btree (domain_name);

--
-- Name: ix_users_email; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_users_email ON public.users USING btree (email);

--
-- Name: agents fk_agents_scaling_group_scaling_groups; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT fk_agents_scaling_group_scaling_groups FOREIGN KEY (scaling_group) REFERENCES public.scaling_groups(name);

--
-- Name: groups fk_groups_domain_name_domains; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groups
    ADD CONSTRAINT fk_groups_domain_name_domains FOREIGN KEY (domain_name) REFERENCES public.domains(name) ON UPDATE CASCADE ON DELETE CASCADE;

--
-- Name: kernels fk_kernels_access_key_keypairs; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kernels
    ADD CONSTRAINT fk_kernels_access_key_keypairs FOREIGN KEY (access_key) REFERENCES public.keypairs(access_key);

--
-- Name: kernels fk_kernels_agent_agents; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kernels
    ADD CONSTRAINT fk_kernels_agent_agents FOREIGN KEY (agent) REFERENCES public.agents(id);

--
-- Name: kernels fk_kernels_domain_name_domains; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kernels
    ADD CONSTRAINT fk_kernels_domain_name_domains FOREIGN KEY (domain_name) REFERENCES public.domains(name);

--
-- Name: kernels fk_kernels_group_id_groups; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kernels
    ADD CONSTRAINT fk_kernels_group_id_groups FOREIGN KEY (group_id) REFERENCES public.groups(id);

--
-- Name: kernels fk_kernels_scaling_group_scaling_groups; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kernels
    ADD CONSTRAINT fk_kernels_scaling_group_scaling_groups FOREIGN KEY (scaling_group) REFERENCES public.scaling_groups(name);

--
-- Name: kernels fk_kernels_user_uuid_users; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kernels
    ADD CONSTRAINT fk_kernels_user_uuid_users FOREIGN KEY (user_uuid) REFERENCES public.users(uuid);

--
-- Name: keypairs fk_keypairs_resource_policy_keypair_resource_policies; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.keypairs
    ADD CONSTRAINT fk_keypairs_resource_policy_keypair_resource_policies FOREIGN KEY (resource_policy) REFERENCES public.keypair_resource_policies(name);

--
-- Name: keypairs fk_keypairs_user_users; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.keypairs
    ADD CONSTRAINT fk_keypairs_user_users FOREIGN KEY ("user") REFERENCES public.users(uuid);

--
-- Name: users fk_users_domain_name_domains; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT fk_users_domain_name_domains FOREIGN KEY (domain_name) REFERENCES public.domains(name);

--
-- PostgreSQL database dump complete
--

