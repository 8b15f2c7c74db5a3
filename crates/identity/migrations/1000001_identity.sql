-- Identity tables. Written once for SQLite and PostgreSQL (see core::db::Db::migrate).
-- Times are Unix seconds unless the column name ends in _us (microseconds).

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled     BOOLEAN NOT NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    extra       TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains (id),
    parent_id   TEXT REFERENCES projects (id),
    description TEXT NOT NULL DEFAULT '',
    enabled     BOOLEAN NOT NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    extra       TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE INDEX projects_parent ON projects (parent_id);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    domain_id          TEXT NOT NULL REFERENCES domains (id),
    enabled            BOOLEAN NOT NULL,
    password_hash      TEXT,
    default_project_id TEXT,
    extra              TEXT NOT NULL DEFAULT '{}',
    failed_auth_count  BIGINT NOT NULL DEFAULT 0,
    failed_auth_at     BIGINT,
    created_at         BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE identity_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains (id),
    description TEXT NOT NULL DEFAULT '',
    extra       TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES identity_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

-- domain_id is '' for global roles (the common case).
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    immutable   BOOLEAN NOT NULL DEFAULT FALSE,
    extra       TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE implied_roles (
    prior_role_id   TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    implied_role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (prior_role_id, implied_role_id)
);

-- actor_type: user | group; target_type: project | domain | system (target_id 'all').
CREATE TABLE assignments (
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id)
);
CREATE INDEX assignments_target ON assignments (target_type, target_id);
CREATE INDEX assignments_role ON assignments (role_id);

CREATE TABLE application_credentials (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id   TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    secret_hash  TEXT NOT NULL,
    expires_at   BIGINT,
    unrestricted BOOLEAN NOT NULL,
    role_ids     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

-- blob is encrypted with the credential key repository.
CREATE TABLE credentials (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id     TEXT,
    type           TEXT NOT NULL,
    encrypted_blob TEXT NOT NULL,
    extra          TEXT NOT NULL DEFAULT '{}',
    created_at     BIGINT NOT NULL
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE regions (
    id               TEXT PRIMARY KEY,
    description      TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT REFERENCES regions (id),
    extra            TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE services (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    enabled     BOOLEAN NOT NULL,
    extra       TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE endpoints (
    id         TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    interface  TEXT NOT NULL,
    region_id  TEXT REFERENCES regions (id),
    url        TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    extra      TEXT NOT NULL DEFAULT '{}'
);

-- A token is revoked when it matches every non-null column of an event and was
-- issued at or before issued_before_us.
CREATE TABLE revocation_events (
    id               TEXT PRIMARY KEY,
    audit_id         TEXT,
    audit_chain_id   TEXT,
    user_id          TEXT,
    project_id       TEXT,
    domain_id        TEXT,
    issued_before_us BIGINT NOT NULL,
    revoked_at       BIGINT NOT NULL
);
