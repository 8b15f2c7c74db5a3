-- Tasks of interactive imports, listed by GET /v2/images/{id}/tasks (Image API v2.12).
CREATE TABLE image_tasks (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    user_id TEXT NOT NULL,
    request_id TEXT,
    input TEXT NOT NULL,
    result TEXT,
    message TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    expires_at_us BIGINT
);
CREATE INDEX image_tasks_image ON image_tasks (image_id);
