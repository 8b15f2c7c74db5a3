-- Tags of EC2 resources that have no place for them in OpenStack (volumes, security
-- groups, VPCs, subnets, key pairs); instance and image tags live in server metadata
-- and image properties. Per project: a shared network's VPC is tagged by each project
-- for itself.
CREATE TABLE ec2_tags (
    resource_id VARCHAR(32) NOT NULL,
    tag_key VARCHAR(128) NOT NULL,
    tag_value VARCHAR(255) NOT NULL,
    project_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (project_id, resource_id, tag_key)
);
