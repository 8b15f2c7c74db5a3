-- Pages of servers in the default order (newest first, then id) read straight from
-- an index, without sorting every server of the project.
DROP INDEX servers_project;
DROP INDEX servers_list;
CREATE INDEX servers_project_page ON servers (project_id, deleted, created_at_us, id);
CREATE INDEX servers_page ON servers (deleted, created_at_us, id);
