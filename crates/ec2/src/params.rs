//! The Query API's flat parameters (`Filter.1.Value.2=x`), read as lists and
//! nested structures with AWS's rules: members numbered from 1, in numeric order.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// A request's parameters, minus the signing ones.
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, String>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn required(&self, k: &str) -> Result<&str> {
        self.get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::missing(k))
    }

    pub fn string(&self, k: &str) -> Option<String> {
        self.get(k).map(str::to_string)
    }

    pub fn bool(&self, k: &str) -> Result<Option<bool>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Error::invalid_value(k, v, "Expected a boolean.")),
        }
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid_value(k, v, "Expected an integer.")),
        }
    }

    /// The members of `prefix.N.rest`, keyed by N (numeric order), each with its
    /// keys stripped to `rest`. Scalar lists (`prefix.N`) come as key "".
    fn members(&self, prefix: &str) -> BTreeMap<u32, Params> {
        let mut out: BTreeMap<u32, Params> = BTreeMap::new();
        let head = format!("{prefix}.");
        for (k, v) in self.0.range(head.clone()..) {
            let Some(rest) = k.strip_prefix(&head) else {
                break;
            };
            let (n, tail) = match rest.split_once('.') {
                Some((n, tail)) => (n, tail),
                None => (rest, ""),
            };
            if let Ok(n) = n.parse::<u32>() {
                out.entry(n)
                    .or_default()
                    .0
                    .insert(tail.to_string(), v.clone());
            }
        }
        out
    }

    /// `prefix.1`, `prefix.2`, …: a list of strings.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.members(prefix)
            .into_values()
            .filter_map(|p| p.0.get("").cloned())
            .collect()
    }

    /// `prefix.N.*`: a list of structures.
    pub fn structs(&self, prefix: &str) -> Vec<Params> {
        self.members(prefix).into_values().collect()
    }

    /// `prefix.*`: one structure.
    pub fn sub(&self, prefix: &str) -> Params {
        let head = format!("{prefix}.");
        Params(
            self.0
                .range(head.clone()..)
                .take_while(|(k, _)| k.starts_with(&head))
                .map(|(k, v)| (k[head.len()..].to_string(), v.clone()))
                .collect(),
        )
    }

    /// `Filter.N.Name` + `Filter.N.Value.M`.
    pub fn filters(&self) -> Result<Vec<Filter>> {
        self.structs("Filter")
            .into_iter()
            .map(|f| {
                let name = f
                    .required("Name")
                    .map_err(|_| Error::missing("Filter.N.Name"))?;
                Ok(Filter {
                    name: name.to_string(),
                    values: f.list("Value"),
                })
            })
            .collect()
    }

    /// `TagSpecification.N.ResourceType` + `.Tag.M.Key/Value`, for one resource type.
    pub fn tag_specs(&self, resource: &str) -> Result<Vec<(String, String)>> {
        let mut tags = Vec::new();
        for spec in self.structs("TagSpecification") {
            let rt = spec.get("ResourceType").unwrap_or_default();
            if rt != resource {
                if !matches!(
                    rt,
                    "instance"
                        | "volume"
                        | "network-interface"
                        | "spot-instances-request"
                        | "key-pair"
                        | "security-group"
                        | "image"
                        | "snapshot"
                ) {
                    return Err(Error::invalid_value(
                        "TagSpecification.ResourceType",
                        rt,
                        "",
                    ));
                }
                continue;
            }
            tags.extend(tag_list(&spec, "Tag")?);
        }
        Ok(tags)
    }
}

/// `prefix.N.Key` / `prefix.N.Value` pairs.
pub fn tag_list(p: &Params, prefix: &str) -> Result<Vec<(String, String)>> {
    p.structs(prefix)
        .into_iter()
        .map(|t| {
            let key = t.get("Key").unwrap_or_default();
            if key.is_empty() {
                return Err(Error::missing("Tag.N.Key"));
            }
            Ok((
                key.to_string(),
                t.get("Value").unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// One `Filter`: AND across filters, OR across its values; `*` and `?` are
/// wildcards (AWS allows them on every string filter).
#[derive(Debug, Clone)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn matches(&self, value: &str) -> bool {
        self.values.iter().any(|p| glob(p, value))
    }

    pub fn matches_any<'a>(&self, mut values: impl Iterator<Item = &'a str>) -> bool {
        values.any(|v| self.matches(v))
    }
}

/// AND across filters: `test` says whether one filter holds, `None` for a filter
/// name the resource does not have (AWS: InvalidParameterValue).
pub fn all_match(
    filters: &[Filter],
    mut test: impl FnMut(&Filter) -> Option<bool>,
) -> Result<bool> {
    for f in filters {
        match test(f) {
            Some(true) => {}
            Some(false) => return Ok(false),
            None => {
                return Err(Error::invalid_value(
                    "Filter",
                    &f.name,
                    "The filter is invalid.",
                ));
            }
        }
    }
    Ok(true)
}

/// `*` any run, `?` one character; `\` escapes (AWS's filter syntax).
pub fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut i, mut j) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while j < t.len() {
        if i < p.len() && p[i] == '\\' && i + 1 < p.len() && p[i + 1] == t[j] {
            i += 2;
            j += 1;
        } else if i < p.len() && (p[i] == '?' || (p[i] == t[j] && p[i] != '*' && p[i] != '\\')) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(si) = star {
            i = si + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn lists_follow_numeric_order_not_text_order() {
        let p = params(&[
            ("InstanceId.10", "c"),
            ("InstanceId.2", "b"),
            ("InstanceId.1", "a"),
            ("InstanceIdX", "no"),
        ]);
        assert_eq!(p.list("InstanceId"), vec!["a", "b", "c"]);
    }

    #[test]
    fn filters_and_tag_specs_parse_nested_members() {
        let p = params(&[
            ("Filter.1.Name", "tag:Name"),
            ("Filter.1.Value.1", "web*"),
            ("Filter.1.Value.2", "db"),
            ("Filter.2.Name", "instance-state-name"),
            ("Filter.2.Value.1", "running"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web1"),
            ("TagSpecification.2.ResourceType", "volume"),
            ("TagSpecification.2.Tag.1.Key", "v"),
        ]);
        let f = p.filters().unwrap();
        assert_eq!(f.len(), 2);
        assert!(f[0].matches("web-7") && f[0].matches("db") && !f[0].matches("dbx"));
        assert_eq!(
            p.tag_specs("instance").unwrap(),
            vec![("Name".to_string(), "web1".to_string())]
        );
        assert!(params(&[("Filter.1.Value.1", "x")]).filters().is_err());
    }

    #[test]
    fn glob_wildcards() {
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("a*c*", "abxcyz"));
        assert!(glob(r"a\*", "a*"));
        assert!(!glob(r"a\*", "ab"));
        assert!(!glob("abc", "abcd"));
    }
}
