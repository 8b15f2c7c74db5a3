-- What servers are made from and limited by: flavors (+ extra specs, project
-- access), key pairs, quota classes, server groups. Nova's and devstack's default
-- flavors are seeded here, so they appear exactly once, at first start; a default
-- flavor an operator deletes stays deleted.

CREATE TABLE flavors (
    -- Nova's `flavorid` (the API's `id`).
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    memory_mb BIGINT NOT NULL,
    vcpus BIGINT NOT NULL,
    root_gb BIGINT NOT NULL,
    ephemeral_gb BIGINT NOT NULL,
    swap_mb BIGINT NOT NULL,
    rxtx_factor DOUBLE PRECISION NOT NULL,
    is_public BOOLEAN NOT NULL,
    disabled BOOLEAN NOT NULL,
    description TEXT,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT
);

CREATE TABLE flavor_extra_specs (
    flavor_id TEXT NOT NULL REFERENCES flavors (id) ON DELETE CASCADE,
    spec_key TEXT NOT NULL,
    spec_value TEXT NOT NULL,
    PRIMARY KEY (flavor_id, spec_key)
);

CREATE TABLE flavor_projects (
    flavor_id TEXT NOT NULL REFERENCES flavors (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

INSERT INTO flavors (id, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap_mb, rxtx_factor, is_public, disabled, description, created_at_us) VALUES
    ('1', 'm1.tiny', 512, 1, 1, 0, 0, 1.0, TRUE, FALSE, NULL, 0),
    ('2', 'm1.small', 2048, 1, 20, 0, 0, 1.0, TRUE, FALSE, NULL, 0),
    ('3', 'm1.medium', 4096, 2, 40, 0, 0, 1.0, TRUE, FALSE, NULL, 0),
    ('4', 'm1.large', 8192, 4, 80, 0, 0, 1.0, TRUE, FALSE, NULL, 0),
    ('5', 'm1.xlarge', 16384, 8, 160, 0, 0, 1.0, TRUE, FALSE, NULL, 0),
    ('42', 'm1.nano', 64, 1, 1, 0, 0, 1.0, TRUE, FALSE, NULL, 0),
    ('84', 'm1.micro', 128, 1, 1, 0, 0, 1.0, TRUE, FALSE, NULL, 0);

-- Key pairs belong to a user. `id` is Nova's integer id (shown by GET).
CREATE TABLE key_pairs (
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    id BIGINT NOT NULL UNIQUE,
    key_type TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- os-quota-class-sets (only the class `default` is used: it overrides the
-- configured defaults).
CREATE TABLE quota_classes (
    class_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (class_name, resource)
);

CREATE TABLE server_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    policy TEXT NOT NULL,
    -- JSON object (`{"max_server_per_host": 2}`), `{}` when none.
    rules TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups (project_id, created_at_us);

CREATE TABLE server_group_members (
    group_id TEXT NOT NULL REFERENCES server_groups (id) ON DELETE CASCADE,
    server_id TEXT NOT NULL,
    PRIMARY KEY (group_id, server_id)
);
CREATE INDEX server_group_members_server ON server_group_members (server_id);
