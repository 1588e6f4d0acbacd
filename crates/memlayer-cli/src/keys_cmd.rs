//! `memlayer keys`: API keys in the store, for `memlayer serve --keys` (see `docs/security.md`).

use clap::Subcommand;
use memlayer_server::{KeyInfo, KeyScope, Keys, NewKey, parse_span};
use serde_json::json;

use crate::{Outcome, err, print_json, raw, table};

/// What `memlayer keys` does.
#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Make a key; its token is printed once and never stored.
    Create {
        /// A name for people and metrics, unique among the keys not revoked.
        #[arg(long)]
        name: String,
        /// The namespaces it may touch, comma-separated (an admin key touches every one).
        #[arg(long = "namespace", value_delimiter = ',')]
        namespaces: Vec<String>,
        /// read (search and get), write (and write memories) or admin (every namespace,
        /// and keys).
        #[arg(long, default_value = "write")]
        scope: String,
        /// How long it lives: 90s, 15m, 12h, 30d, 2w (for ever when absent).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Show the keys: name, scope, namespaces, created, last used, expiry; never a secret.
    List,
    /// Give a key a new secret; the old one keeps working for the grace period.
    Rotate {
        /// The key's id or name.
        key: String,
        /// How long the old secret keeps working (0s ends it now).
        #[arg(long, default_value = "0s")]
        grace: String,
    },
    /// Revoke a key: every server refuses it within seconds.
    Revoke {
        /// The key's id or name.
        key: String,
    },
}

fn when(t: Option<memlayer::Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

fn row(k: &KeyInfo) -> Vec<String> {
    let namespaces = if k.scope == KeyScope::Admin {
        "*".to_owned()
    } else {
        k.namespaces.join(",")
    };
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    };
    vec![
        k.id.clone(),
        k.name.clone(),
        k.scope.as_str().to_owned(),
        namespaces,
        state.to_owned(),
        k.created_at.to_string(),
        when(k.last_used_at),
        when(k.expires_at),
    ]
}

fn show_token(info: &KeyInfo, token: &str, json_out: bool, verb: &str) -> Outcome {
    if json_out {
        return print_json(&json!({ "key": info, "token": token }));
    }
    println!(
        "{verb} key {} ({}, {})",
        info.id,
        info.name,
        info.scope.as_str()
    );
    println!("{token}");
    eprintln!("this token is shown once: the store keeps only its SHA-256 digest");
    Ok(())
}

/// Runs `action` on the keys of the store at `url`.
pub(crate) async fn run(url: &str, action: KeysAction, json_out: bool) -> Outcome {
    let keys = Keys::new(raw(url).await?);
    match action {
        KeysAction::Create {
            name,
            namespaces,
            scope,
            expires,
        } => {
            let new = NewKey {
                name,
                scope: KeyScope::parse(&scope).map_err(err)?,
                namespaces,
                expires_in: expires
                    .as_deref()
                    .map(|e| parse_span("expires", e))
                    .transpose()
                    .map_err(err)?,
            };
            let (info, token) = keys.create(new).await.map_err(err)?;
            show_token(&info, &token, json_out, "created")
        }
        KeysAction::List => {
            let all = keys.list().await.map_err(err)?;
            if json_out {
                return print_json(&json!({ "keys": all }));
            }
            let rows: Vec<Vec<String>> = all.iter().map(row).collect();
            print!(
                "{}",
                table::render(
                    &[
                        "id",
                        "name",
                        "scope",
                        "namespaces",
                        "state",
                        "created",
                        "last used",
                        "expires"
                    ],
                    &rows,
                    40
                )
            );
            Ok(())
        }
        KeysAction::Rotate { key, grace } => {
            let grace = parse_span("grace", &grace).map_err(err)?;
            let (info, token) = keys.rotate(&key, grace).await.map_err(err)?;
            show_token(&info, &token, json_out, "rotated")
        }
        KeysAction::Revoke { key } => {
            let info = keys.revoke(&key).await.map_err(err)?;
            if json_out {
                return print_json(&json!({ "key": info }));
            }
            println!("revoked key {} ({})", info.id, info.name);
            Ok(())
        }
    }
}
