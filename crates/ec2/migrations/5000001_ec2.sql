-- EC2 ids, stored both ways: `ec2_id` is derived from (kind, os_id) once and kept,
-- so a lookup either way is one indexed read.
CREATE TABLE ec2_ids (
    ec2_id VARCHAR(32) PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    os_id VARCHAR(255) NOT NULL,
    project_id VARCHAR(64) NOT NULL DEFAULT '',
    UNIQUE (kind, os_id)
);

-- RunInstances' ClientToken: one row per (project, token), found by its key, never
-- by scanning instances.
CREATE TABLE ec2_client_tokens (
    project_id VARCHAR(64) NOT NULL,
    client_token VARCHAR(64) NOT NULL,
    params_hash VARCHAR(64) NOT NULL,
    reservation_id VARCHAR(64) NOT NULL DEFAULT '',
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (project_id, client_token)
);

-- Instance attributes only EC2 has (Nova has no place for them).
CREATE TABLE ec2_instance_attrs (
    server_id VARCHAR(64) PRIMARY KEY,
    disable_api_termination BOOLEAN NOT NULL DEFAULT FALSE,
    disable_api_stop BOOLEAN NOT NULL DEFAULT FALSE,
    source_dest_check BOOLEAN NOT NULL DEFAULT TRUE,
    shutdown_behavior VARCHAR(16) NOT NULL DEFAULT 'stop',
    client_token VARCHAR(64) NOT NULL DEFAULT '',
    http_tokens VARCHAR(16) NOT NULL DEFAULT 'optional'
);
