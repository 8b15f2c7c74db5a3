-- Compute: hosts (hypervisors + their compute service), servers (desired and
-- observed state; the variable part as a JSON document), instance actions and
-- their events, per-project quota overrides.

CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    service_id TEXT NOT NULL UNIQUE,
    availability_zone TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    forced_down BOOLEAN NOT NULL,
    hypervisor_type TEXT NOT NULL,
    hypervisor_version BIGINT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    local_gb BIGINT NOT NULL,
    cpu_allocation_ratio DOUBLE PRECISION NOT NULL,
    ram_allocation_ratio DOUBLE PRECISION NOT NULL,
    disk_allocation_ratio DOUBLE PRECISION NOT NULL,
    reserved_host_memory_mb BIGINT NOT NULL,
    reserved_host_disk_mb BIGINT NOT NULL,
    host_ip TEXT NOT NULL,
    last_seen_us BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);

CREATE TABLE servers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    vm_state TEXT NOT NULL,
    task_state TEXT,
    power_state BIGINT NOT NULL,
    host TEXT,
    availability_zone TEXT,
    flavor_id TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    root_gb BIGINT NOT NULL,
    ephemeral_gb BIGINT NOT NULL,
    locked BOOLEAN NOT NULL,
    reservation_id TEXT NOT NULL,
    launch_index BIGINT NOT NULL,
    -- Bumped by every change of intent; the agent records which generation it served.
    generation BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_us BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    launched_at_us BIGINT,
    terminated_at_us BIGINT,
    deleted BOOLEAN NOT NULL,
    deleted_at_us BIGINT,
    doc TEXT NOT NULL
);
CREATE INDEX servers_project ON servers (project_id, deleted, created_at_us);
CREATE INDEX servers_list ON servers (deleted, created_at_us);
CREATE INDEX servers_host_task ON servers (host, task_state);
CREATE INDEX servers_task ON servers (task_state);
CREATE INDEX servers_reservation ON servers (reservation_id);

CREATE TABLE instance_actions (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    message TEXT,
    start_us BIGINT NOT NULL,
    finish_us BIGINT,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX instance_actions_server ON instance_actions (server_id, start_us);

CREATE TABLE instance_action_events (
    id TEXT PRIMARY KEY,
    action_id TEXT NOT NULL REFERENCES instance_actions (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    result TEXT,
    traceback TEXT,
    host TEXT,
    start_us BIGINT NOT NULL,
    finish_us BIGINT
);
CREATE INDEX instance_action_events_action ON instance_action_events (action_id);

-- Per-project (and optionally per-user) quota limits; absent = the configured default.
CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id, resource)
);
