//! The client files bootstrap leaves in the state directory, all 0600:
//! `clouds.yaml` (for `openstack --os-cloud`), `adminrc` (OS_* variables) and
//! `ec2rc.sh` (EC2/AWS variables). They are rewritten on every start so that a
//! changed address reaches them; the admin password, which the database only
//! keeps hashed, is carried over from the previous `clouds.yaml`.

use std::path::Path;

use anyhow::Context;

use ferrostack_core::fsutil::write_private_atomic;
use ferrostack_identity::credential::Ec2Credential;

pub struct ClientFiles<'a> {
    pub cloud_name: &'a str,
    pub auth_url: &'a str,
    pub region: &'a str,
    pub admin_password: Option<&'a str>,
    pub ec2: &'a Ec2Credential,
    pub ec2_url: &'a str,
}

/// YAML single-quoted scalar.
fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// POSIX shell single-quoted word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Reads back the admin password from a clouds.yaml this program wrote.
pub fn previous_password(state_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(state_dir.join("clouds.yaml")).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("password: '"))?;
    let quoted = line.trim_start().strip_prefix("password: ")?;
    let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

impl ClientFiles<'_> {
    pub fn clouds_yaml(&self) -> String {
        let password = match self.admin_password {
            Some(p) => format!("        password: {}\n", yaml_quote(p)),
            None => String::new(),
        };
        format!(
            "# Written by ferrostack at bootstrap. Use it with:\n\
             #   export OS_CLIENT_CONFIG_FILE=<this file>; openstack --os-cloud {name} token issue\n\
             clouds:\n  \
               {name}:\n    \
                 auth:\n      \
                   auth_url: {url}\n      \
                   username: admin\n{password}      \
                   project_name: admin\n      \
                   user_domain_name: Default\n      \
                   project_domain_name: Default\n    \
                 region_name: {region}\n    \
                 identity_api_version: 3\n    \
                 interface: public\n  \
               {name}-system:\n    \
                 auth:\n      \
                   auth_url: {url}\n      \
                   username: admin\n{password}      \
                   user_domain_name: Default\n      \
                   system_scope: all\n    \
                 region_name: {region}\n    \
                 identity_api_version: 3\n    \
                 interface: public\n",
            name = self.cloud_name,
            url = self.auth_url,
            region = self.region,
            password = password.replace("        ", "      "),
        )
    }

    pub fn adminrc(&self) -> String {
        let password = match self.admin_password {
            Some(p) => format!("export OS_PASSWORD={}\n", sh_quote(p)),
            None => "# OS_PASSWORD unknown: set [bootstrap] admin_password to reset it\n".into(),
        };
        format!(
            "# Written by ferrostack at bootstrap: source it, then run `openstack ...`.\n\
             export OS_AUTH_URL={}\n\
             export OS_USERNAME=admin\n\
             {password}\
             export OS_PROJECT_NAME=admin\n\
             export OS_USER_DOMAIN_NAME=Default\n\
             export OS_PROJECT_DOMAIN_NAME=Default\n\
             export OS_REGION_NAME={}\n\
             export OS_IDENTITY_API_VERSION=3\n\
             export OS_INTERFACE=public\n",
            sh_quote(self.auth_url),
            sh_quote(self.region),
        )
    }

    pub fn ec2rc(&self) -> String {
        format!(
            "# Written by ferrostack at bootstrap: EC2 credentials of the admin user.\n\
             export EC2_ACCESS_KEY={a}\n\
             export EC2_SECRET_KEY={s}\n\
             export EC2_URL={u}\n\
             export AWS_ACCESS_KEY_ID={a}\n\
             export AWS_SECRET_ACCESS_KEY={s}\n\
             export AWS_DEFAULT_REGION={r}\n\
             export AWS_ENDPOINT_URL_EC2={u}\n",
            a = sh_quote(&self.ec2.access),
            s = sh_quote(&self.ec2.secret),
            u = sh_quote(self.ec2_url),
            r = sh_quote(self.region),
        )
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        for (name, content) in [
            ("clouds.yaml", self.clouds_yaml()),
            ("adminrc", self.adminrc()),
            ("ec2rc.sh", self.ec2rc()),
        ] {
            let path = dir.join(name);
            write_private_atomic(&path, content.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec2() -> Ec2Credential {
        Ec2Credential {
            user_id: "u".into(),
            tenant_id: Some("p".into()),
            access: "ak".into(),
            secret: "sk".into(),
            trust_id: None,
        }
    }

    #[test]
    fn password_with_quotes_round_trips_through_clouds_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let e = ec2();
        let f = ClientFiles {
            cloud_name: "ferrostack",
            auth_url: "http://127.0.0.1:1/identity/v3",
            region: "RegionOne",
            admin_password: Some("it's s3cret"),
            ec2: &e,
            ec2_url: "http://127.0.0.1:1/ec2",
        };
        f.write(dir.path()).unwrap();
        assert_eq!(
            previous_password(dir.path()).as_deref(),
            Some("it's s3cret")
        );
        assert!(f.adminrc().contains("export OS_PASSWORD='it'\\''s s3cret'"));
        let yaml = f.clouds_yaml();
        assert!(yaml.contains(
            "  ferrostack:\n    auth:\n      auth_url: http://127.0.0.1:1/identity/v3\n"
        ));
        assert!(yaml.contains("      password: 'it''s s3cret'\n"));
        use std::os::unix::fs::PermissionsExt;
        for name in ["clouds.yaml", "adminrc", "ec2rc.sh"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
}
