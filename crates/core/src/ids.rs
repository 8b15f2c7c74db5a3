//! Identifier generation. Keystone-style ids are 32 lowercase hex characters
//! (a v4 UUID without dashes); resources that upstream names with dashed UUIDs
//! (images, servers) use [`new_uuid`].

/// A new random id in Keystone's format: 32 lowercase hex characters.
pub fn new_hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new random dashed UUID, as Nova and Glance use.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A request id as OpenStack services print them: `req-<uuid>`.
pub fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_32_lowercase_hex_chars() {
        let id = new_hex_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(id, new_hex_id());
    }

    #[test]
    fn request_ids_have_the_openstack_prefix() {
        assert!(new_request_id().starts_with("req-"));
        assert_eq!(new_request_id().len(), 40);
    }
}
