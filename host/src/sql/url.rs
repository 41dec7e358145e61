//! `jdbc:mysql://HOST[:PORT][/DATABASE][?KEY=VALUE&...]`, as RocketMQ
//! Connect's JDBC connector and OpenMLDB's guide write it. `jdbc:mariadb:`
//! and a bare `mysql://` are accepted too.

/// A parsed MySQL connection URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlUrl {
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    /// `user` and `password` query parameters (JDBC allows them there).
    pub user: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("key \"connection.url\": invalid value \"{url}\": {reason}")]
pub struct UrlError {
    pub url: String,
    pub reason: String,
}

const SCHEMES: &[&str] = &["jdbc:mysql://", "jdbc:mariadb://", "mysql://", "mariadb://"];

impl MysqlUrl {
    pub fn parse(raw: &str) -> Result<MysqlUrl, UrlError> {
        let fail = |reason: &str| UrlError { url: raw.to_string(), reason: reason.to_string() };
        let trimmed = raw.trim();
        let rest = SCHEMES
            .iter()
            .find_map(|scheme| {
                trimmed.get(..scheme.len()).filter(|p| p.eq_ignore_ascii_case(scheme)).map(|_| &trimmed[scheme.len()..])
            })
            .ok_or_else(|| fail("expected jdbc:mysql://HOST[:PORT][/DATABASE]"))?;
        let (address_and_path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (address, database) = match address_and_path.split_once('/') {
            Some((address, db)) => (address, Some(db.trim_end_matches('/'))),
            None => (address_and_path, None),
        };
        if address.contains(',') {
            return Err(fail("several hosts (failover URLs) are not supported; name one host"));
        }
        let address = address.rsplit_once('@').map(|(_, a)| a).unwrap_or(address);
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => {
                (host, port.parse::<u16>().map_err(|_| fail(&format!("port \"{port}\" is not a number 1-65535")))?)
            }
            None => (address, 3306),
        };
        if host.is_empty() {
            return Err(fail("the host is missing (jdbc:mysql://HOST:PORT)"));
        }
        let mut url = MysqlUrl {
            host: host.to_string(),
            port,
            database: database.filter(|d| !d.is_empty()).map(str::to_string),
            user: None,
            password: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "user" => url.user = Some(value.to_string()),
                "password" => url.password = Some(value.to_string()),
                // Driver tuning (useSSL, serverTimezone, ...) has no meaning here.
                other => tracing::debug!(parameter = other, "ignoring JDBC URL parameter"),
            }
        }
        Ok(url)
    }

    /// `host:port`, for messages and thread names.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_url_and_its_variants_parse() {
        let url = MysqlUrl::parse("jdbc:mysql://127.0.0.1:3306").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.database.as_deref()), ("127.0.0.1", 3306, None));
        let url = MysqlUrl::parse("jdbc:mysql://db.local/shop?useSSL=false&user=u&password=p").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.database.as_deref()), ("db.local", 3306, Some("shop")));
        assert_eq!((url.user.as_deref(), url.password.as_deref()), (Some("u"), Some("p")));
        assert_eq!(MysqlUrl::parse("mariadb://h:1/").unwrap().database, None);
    }

    #[test]
    fn bad_urls_name_the_key_the_value_and_the_fix() {
        assert_eq!(
            MysqlUrl::parse("jdbc:openmldb:///db").unwrap_err().to_string(),
            "key \"connection.url\": invalid value \"jdbc:openmldb:///db\": expected jdbc:mysql://HOST[:PORT][/DATABASE]"
        );
        assert!(MysqlUrl::parse("jdbc:mysql://h:port").unwrap_err().reason.contains("\"port\""));
        assert!(MysqlUrl::parse("jdbc:mysql://a:1,b:2/db").unwrap_err().reason.contains("several hosts"));
        assert!(MysqlUrl::parse("jdbc:mysql://:3306").unwrap_err().reason.contains("host is missing"));
    }
}
