//! Store URLs fit for logs and error messages.

/// `url` with any user name and password replaced by `***` (`postgres://***@host/db`), and a
/// `password=` query parameter's value likewise, so that a start-up line, an open error or a
/// backend's error never shows a credential.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_never_survive() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.internal:5432/mem?sslmode=require"),
            "postgres://***@db.internal:5432/mem?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:s3cret@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("postgres://db/mem?user=app&password=s3cret"),
            "postgres://db/mem?user=app&password=***"
        );
        assert_eq!(
            redact_url("chroma:http://u:p@host:8000"),
            "chroma:http://***@host:8000"
        );
        for plain in ["sqlite:./memlayer.db", "memory", "redis://127.0.0.1:6379"] {
            assert_eq!(redact_url(plain), plain);
        }
    }
}
