//! Revocation events, Keystone's model: an event names an audit id, an audit chain,
//! a user, a project, a domain or a user+project pair, and every token issued at or
//! before the event that matches it is revoked. Events are persisted and kept in
//! memory as hash indexes so that checking a token costs a few lookups.

use std::collections::HashMap;

/// What an event matches. All set fields must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationEvent {
    pub audit_id: Option<String>,
    pub audit_chain_id: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    /// Unix microseconds; tokens issued at or before are revoked.
    pub issued_before_us: i64,
}

/// What of a token the index needs.
pub struct TokenFacts<'a> {
    pub audit_ids: &'a [String],
    pub user_id: &'a str,
    pub user_domain_id: &'a str,
    pub project_id: Option<&'a str>,
    /// The domain of the project, or the scoped domain.
    pub scope_domain_id: Option<&'a str>,
    pub issued_at_us: i64,
}

#[derive(Debug, Default)]
pub struct RevocationIndex {
    by_audit: HashMap<String, i64>,
    by_chain: HashMap<String, i64>,
    by_user: HashMap<String, i64>,
    by_project: HashMap<String, i64>,
    by_domain: HashMap<String, i64>,
    by_user_project: HashMap<(String, String), i64>,
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, i64>, key: K, at: i64) {
    let e = map.entry(key).or_insert(at);
    if *e < at {
        *e = at;
    }
}

fn revoked_by<K: std::hash::Hash + Eq + ?Sized>(
    map: &HashMap<String, i64>,
    key: &K,
    issued: i64,
) -> bool
where
    String: std::borrow::Borrow<K>,
{
    map.get(key).is_some_and(|before| issued <= *before)
}

impl RevocationIndex {
    pub fn add(&mut self, e: &RevocationEvent) {
        let at = e.issued_before_us;
        match (&e.user_id, &e.project_id) {
            (Some(u), Some(p)) => bump(&mut self.by_user_project, (u.clone(), p.clone()), at),
            (Some(u), None) => bump(&mut self.by_user, u.clone(), at),
            (None, Some(p)) => bump(&mut self.by_project, p.clone(), at),
            (None, None) => {}
        }
        if let Some(a) = &e.audit_id {
            bump(&mut self.by_audit, a.clone(), at);
        }
        if let Some(c) = &e.audit_chain_id {
            bump(&mut self.by_chain, c.clone(), at);
        }
        if let Some(d) = &e.domain_id {
            bump(&mut self.by_domain, d.clone(), at);
        }
    }

    pub fn is_revoked(&self, t: &TokenFacts<'_>) -> bool {
        let at = t.issued_at_us;
        if let Some(first) = t.audit_ids.first()
            && revoked_by(&self.by_audit, first.as_str(), at)
        {
            return true;
        }
        // A chain event revokes the original token and every token rescoped from it.
        if t.audit_ids
            .iter()
            .any(|a| revoked_by(&self.by_chain, a.as_str(), at))
        {
            return true;
        }
        if revoked_by(&self.by_user, t.user_id, at) {
            return true;
        }
        if let Some(p) = t.project_id {
            if revoked_by(&self.by_project, p, at) {
                return true;
            }
            if self
                .by_user_project
                .get(&(t.user_id.to_string(), p.to_string()))
                .is_some_and(|before| at <= *before)
            {
                return true;
            }
        }
        if revoked_by(&self.by_domain, t.user_domain_id, at) {
            return true;
        }
        if let Some(d) = t.scope_domain_id
            && revoked_by(&self.by_domain, d, at)
        {
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(audit: &'a [String], issued: i64) -> TokenFacts<'a> {
        TokenFacts {
            audit_ids: audit,
            user_id: "u1",
            user_domain_id: "default",
            project_id: Some("p1"),
            scope_domain_id: Some("default"),
            issued_at_us: issued,
        }
    }

    #[test]
    fn events_revoke_only_older_matching_tokens() {
        let audit = vec!["a1".to_string()];
        let mut idx = RevocationIndex::default();
        assert!(!idx.is_revoked(&facts(&audit, 100)));
        idx.add(&RevocationEvent {
            user_id: Some("u1".into()),
            issued_before_us: 100,
            ..Default::default()
        });
        assert!(idx.is_revoked(&facts(&audit, 100)));
        assert!(!idx.is_revoked(&facts(&audit, 101)), "new tokens are fine");
    }

    #[test]
    fn user_project_event_needs_both() {
        let audit = vec!["a1".to_string()];
        let mut idx = RevocationIndex::default();
        idx.add(&RevocationEvent {
            user_id: Some("u1".into()),
            project_id: Some("p2".into()),
            issued_before_us: 100,
            ..Default::default()
        });
        assert!(!idx.is_revoked(&facts(&audit, 50)));
        idx.add(&RevocationEvent {
            user_id: Some("u1".into()),
            project_id: Some("p1".into()),
            issued_before_us: 100,
            ..Default::default()
        });
        assert!(idx.is_revoked(&facts(&audit, 50)));
    }

    #[test]
    fn audit_and_chain_events() {
        let child = vec!["child".to_string(), "parent".to_string()];
        let mut idx = RevocationIndex::default();
        idx.add(&RevocationEvent {
            audit_id: Some("parent".into()),
            issued_before_us: 100,
            ..Default::default()
        });
        assert!(
            !idx.is_revoked(&facts(&child, 50)),
            "audit id revokes one token only"
        );
        idx.add(&RevocationEvent {
            audit_chain_id: Some("parent".into()),
            issued_before_us: 100,
            ..Default::default()
        });
        assert!(idx.is_revoked(&facts(&child, 50)));
    }

    #[test]
    fn domain_event_hits_users_and_scopes_in_domain() {
        let audit = vec!["a".to_string()];
        let mut idx = RevocationIndex::default();
        idx.add(&RevocationEvent {
            domain_id: Some("default".into()),
            issued_before_us: 100,
            ..Default::default()
        });
        assert!(idx.is_revoked(&facts(&audit, 50)));
    }
}
