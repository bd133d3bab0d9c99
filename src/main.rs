//! The `gamify` command: `serve` runs the HTTP API; the other subcommands are
//! the operations a user runs around it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gamify::config::Config;
use gamify::tenants::{Tenancy, Workers};
use gamify::{Engine, Storage};
use gamify::{export, http, import};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

// mimalloc, not the C library's malloc: a request allocates and frees
// dozens of small objects across two worker threads, and glibc's malloc and
// free were a fifth of a leaderboard read's instructions. Measured in
// docs/BENCHMARKS.md ("Kept pages and mimalloc"). The library leaves the choice to
// the program that embeds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gamify",
    version,
    about = "Habit-economy engine: points, streaks, levels, achievements, leaderboards"
)]
struct Cli {
    /// A TOML file overriding the built-in defaults (see config.default.toml).
    #[arg(long, global = true, env = "GAMIFY_CONFIG")]
    config: Option<PathBuf>,
    /// The tenant a command works on (see `gamify tenants`); without it,
    /// the default tenant. `serve` serves every tenant and takes none.
    #[arg(long, global = true, env = "GAMIFY_TENANT")]
    tenant: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (on GAMIFY_ADDR, default 127.0.0.1:8000) until SIGTERM or ctrl-c.
    Serve {
        /// Apply pending PostgreSQL migrations first (safe with several nodes
        /// starting at once). Without it, a PostgreSQL schema that is not this
        /// binary's is refused. SQLite is always migrated.
        #[arg(long)]
        migrate: bool,
        /// Serve without any API key on an address other than loopback:
        /// anyone who can reach it may record and read. Without this flag,
        /// `serve` refuses to do that.
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Check every invariant of the stored data (each balance equals its
    /// ledger, ledger chains, event counts, reward stock); print what
    /// differs and exit non-zero on any breach. On SQLite, stop the server
    /// first (one process owns the file); on PostgreSQL, run it any time.
    Verify,
    /// Copy the embedded database to FILE while the server keeps running: a
    /// consistent snapshot of the log (gamify.db), which alone determines
    /// everything. On PostgreSQL, use pg_dump or the provider's backups.
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
    },
    /// Put a backup made by `gamify backup` in place of the embedded
    /// database (the server must be stopped). The derived tables are
    /// rebuilt from it on the next start.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Write every event, ledger entry, balance, reward, spend and
    /// redemption as NDJSON (exact integers; see docs/API.md), or with
    /// --brief the brief's gamify_events.json and gamify_balances.json.
    /// Memory stays flat at any size; progress goes to the log.
    Export {
        /// The NDJSON file to write ("-" for standard output).
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// Write the brief's two JSON files into this directory instead
        /// (made if need be; files already there are never overwritten).
        #[arg(long)]
        brief: Option<PathBuf>,
        /// Only this user's data.
        #[arg(long)]
        user: Option<String>,
        /// Only what happened at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Only what happened before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
    },
    /// Load an NDJSON export (from `gamify export`) into an empty database
    /// of either backend, keeping every id and key (the whole file is
    /// checked first: a damaged one changes nothing); then export it again,
    /// compare with the file line by line, and check every invariant. Exits
    /// non-zero if anything differs. Applies PostgreSQL migrations first.
    Import {
        /// The NDJSON file.
        file: PathBuf,
    },
    /// Erase a person's data on request: events, ledger, spends,
    /// redemptions, balance, achievements, leaderboard place (see
    /// docs/API.md, "Erasure"). Keeps only a hash of the id, which refuses
    /// later events for it. Prints what was removed. On SQLite, stop the
    /// server first or use the admin API (`DELETE /api/v2/gamify/users/ID`).
    Erase {
        /// The user id.
        user_id: String,
    },
    /// API keys: make, list and revoke them (see docs/API.md, "API keys").
    /// On SQLite stop the server first (one process owns the file), or use
    /// the admin API; on PostgreSQL, run it any time.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Rules files (see docs/RULES.md): check one before using it, or
    /// print the rules in force as one.
    Rules {
        #[command(subcommand)]
        action: RulesCommand,
    },
    /// Tenants: other teams or customers on this deployment, each with its
    /// own users, rules, rewards, boards and keys (see docs/API.md,
    /// "Tenants"). On SQLite stop the server first, or use the admin API;
    /// on PostgreSQL, run it any time (nodes serve a new tenant within a
    /// second).
    Tenants {
        #[command(subcommand)]
        action: TenantsCommand,
    },
    /// Leaderboard maintenance.
    Leaderboard {
        #[command(subcommand)]
        action: LeaderboardCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print the effective configuration (passwords redacted).
    Config,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key and print it with its secret, shown only now.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// What it may do: ingest, read or admin; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// Print every key (revoked ones too), never a secret.
    List,
    /// Revoke a key: refused at once by every node (within a second).
    Revoke {
        /// The key's id (`key_…`).
        key_id: String,
    },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Make a tenant and print its first key (every scope) with its
    /// secret, shown only now.
    Create {
        /// A lowercase letter, then lowercase letters, digits or
        /// underscores; at most 24 in all.
        name: String,
    },
    /// Print every tenant, the default one first.
    List,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check a rules file: print each mistake with its line and what was
    /// expected, and exit non-zero if there is any. Needs no database.
    Check {
        /// The rules file (TOML).
        file: PathBuf,
    },
    /// Print the rules new events are scored with (or version N) as a
    /// rules file. On SQLite stop the server first, or use the admin API.
    Show {
        /// An older version.
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Subcommand)]
enum LeaderboardCommand {
    /// Rebuild the leaderboards kept in Redis (PostgreSQL with REDIS_URL)
    /// from the database, while nodes keep serving (their board reads
    /// answer 503 meanwhile). Nodes do this by themselves when Redis was
    /// unreachable or emptied; this is for doing it on demand.
    Rebuild,
}

/// `gamify rules check FILE`.
fn check_rules_file(file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match gamify_core::parse_rules(&text) {
        Ok(rules) => {
            println!(
                "ok: {} is a valid rules file ({} categories, {} achievements)",
                file.display(),
                rules.categories.len(),
                rules.achievements.len()
            );
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                println!("{}: {e}", file.display());
            }
            anyhow::bail!("{} has {} mistake(s)", file.display(), errors.len())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A user's mistake (a bad setting, a port in use) reads as one line
            // with its causes, not as a backtrace.
            eprintln!("gamify: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi = cli.command {
        print!("{}", http::openapi::spec_json());
        return Ok(());
    }
    if let Command::Rules {
        action: RulesCommand::Check { file },
    } = &cli.command
    {
        return check_rules_file(file);
    }
    let config = Config::load(cli.config.as_deref(), |k| std::env::var(k).ok())
        .context("invalid configuration")?;
    if let Command::Config = cli.command {
        println!("{config:#?}");
        return Ok(());
    }
    init_logging(&config, matches!(cli.command, Command::Serve { .. }))?;
    let open_files = raise_open_files_limit();
    if matches!(cli.command, Command::Serve { .. }) {
        tracing::info!(
            open_files,
            "open files allowed (ulimit -n, raised to its hard limit)"
        );
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.server.workers > 0 {
        runtime.worker_threads(config.server.workers as usize);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let rules = config.rules()?;
        let storage = match (&cli.command, cli.tenant.as_deref()) {
            (Command::Serve { .. }, Some(_)) => {
                anyhow::bail!("--tenant (GAMIFY_TENANT) is for the other commands: serve serves every tenant")
            }
            (Command::Tenants { .. }, Some(_)) => {
                anyhow::bail!("--tenant (GAMIFY_TENANT): tenants are managed from the default tenant")
            }
            (_, tenant) => storage_of(config.storage()?, &rules, tenant).await?,
        };
        let cannot = || format!("cannot open storage ({storage})");
        match cli.command {
            Command::Migrate => {
                Engine::migrate(&storage, rules.clone())
                    .await
                    .with_context(cannot)?;
                tracing::info!(%storage, "database is up to date");
                // Then every tenant's store (a node opening a tenant would
                // do it too; this makes an upgrade one step).
                for tenant in tenant_list(&storage, &rules).await?.iter().skip(1) {
                    let place = gamify::tenants::tenant_storage(&storage, &tenant.name)
                        .map_err(anyhow::Error::msg)?;
                    Engine::migrate(&place, rules.clone())
                        .await
                        .with_context(|| format!("cannot migrate tenant {:?}", tenant.name))?;
                    tracing::info!(tenant = %tenant.name, "tenant's database is up to date");
                }
                Ok(())
            }
            Command::Serve {
                migrate,
                insecure_no_auth,
            } => {
                // Configuration first: a mistake in it is reported before
                // the database is touched.
                let webhooks = config.webhooks()?;
                let nats = config.nats()?;
                let rule_source = config.rule_source()?;
                let engine = if migrate {
                    Engine::open_migrating(&storage, rules).await
                } else {
                    Engine::open(&storage, rules).await
                }
                .with_context(cannot)?
                .with_api_key(config.server.api_key.clone())
                .with_rate_limit(config.rate_limit())
                .with_limits(config.limits)
                .with_cors_origins(config.server.cors_origins.clone());
                let workers = Workers {
                    sweeps: Some(webhooks.clone()),
                    webhooks: config.webhooks.send.then(|| webhooks.clone()),
                };
                let tenancy = Tenancy::new(engine, Some(storage.clone()), workers);
                let served = start_and_serve(
                    config,
                    &tenancy,
                    rule_source,
                    webhooks,
                    nats,
                    insecure_no_auth,
                )
                .await;
                // Whether serving ended or never began (a port in use, a
                // tenant that would not open), give up what other nodes wait
                // for, such as PostgreSQL's exclusive lease.
                tenancy.close().await;
                served
            }
            Command::Verify => {
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                tracing::info!(%storage, "verifying");
                let findings = engine
                    .verify()
                    .await
                    .context("verification failed to run")?;
                for f in &findings {
                    println!("{}: {}", f.subject, f.message);
                }
                if findings.is_empty() {
                    println!("ok: every invariant holds");
                    Ok(())
                } else {
                    anyhow::bail!("{} invariant breaches found", findings.len())
                }
            }
            Command::Leaderboard {
                action: LeaderboardCommand::Rebuild,
            } => {
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                match engine
                    .rebuild_boards()
                    .await
                    .context("could not rebuild the leaderboards")?
                {
                    Some(entries) => println!("leaderboards rebuilt in Redis: {entries} entries"),
                    None => println!(
                        "nothing to rebuild: the leaderboards are kept in Redis only with PostgreSQL and REDIS_URL; the embedded ones are rebuilt at every start, and without Redis they are read from SQL"
                    ),
                }
                Ok(())
            }
            Command::Keys { action } => {
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                let shown = match action {
                    KeysCommand::Create { name, scopes } => serde_json::to_string_pretty(
                        &engine
                            .create_key(gamify::model::KeyRequest { name, scopes })
                            .await
                            .context("could not make the key")?,
                    ),
                    KeysCommand::List => serde_json::to_string_pretty(
                        &engine.keys().await.context("could not list the keys")?,
                    ),
                    KeysCommand::Revoke { key_id } => serde_json::to_string_pretty(
                        &engine
                            .revoke_key(&key_id)
                            .await
                            .with_context(|| format!("could not revoke {key_id:?}"))?,
                    ),
                };
                println!("{}", shown.context("rendering the keys")?);
                Ok(())
            }
            Command::Tenants { action } => {
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                let tenancy = Tenancy::new(engine, Some(storage.clone()), Workers::default());
                let shown = match action {
                    TenantsCommand::Create { name } => serde_json::to_string_pretty(
                        &tenancy
                            .create(&name)
                            .await
                            .with_context(|| format!("could not make the tenant {name:?}"))?,
                    ),
                    TenantsCommand::List => serde_json::to_string_pretty(
                        &tenancy.list().await.context("could not list the tenants")?,
                    ),
                };
                println!("{}", shown.context("rendering the tenants")?);
                Ok(())
            }
            Command::Rules { action } => {
                let RulesCommand::Show { version } = action else {
                    unreachable!("rules check ran before the configuration was read")
                };
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                let doc = match version {
                    Some(v) => engine
                        .rules_version(v)
                        .with_context(|| format!("no rules version {v}"))?,
                    None => engine.rules_now(),
                };
                println!("# Rules version {} (made {})", doc.version, doc.created_at);
                print!("{}", doc.toml);
                Ok(())
            }
            Command::Erase { user_id } => {
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                let erased = engine
                    .erase_user(&user_id)
                    .await
                    .with_context(|| format!("could not erase {user_id:?}"))?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&erased).context("rendering the erasure")?
                );
                Ok(())
            }
            Command::Backup { file } => {
                let Storage::Sqlite(log) = &storage else {
                    anyhow::bail!(
                        "gamify backup copies the embedded database; for PostgreSQL use pg_dump or your provider's backups (see docs/DEPLOYMENT.md)"
                    );
                };
                let (log, file) = (log.clone(), file.clone());
                let copied = tokio::task::spawn_blocking(move || {
                    gamify_store::sqlite::backup::backup(&log, &file, |bytes| {
                        tracing::info!(written_mib = bytes / (1 << 20), "backing up");
                    })
                })
                .await??;
                tracing::info!(bytes = copied.bytes, events = copied.events, ledger_entries = copied.ledger_entries, "backup written");
                println!(
                    "backup written: {} bytes, {} events, {} ledger entries",
                    copied.bytes, copied.events, copied.ledger_entries
                );
                Ok(())
            }
            Command::Restore { file } => {
                let Storage::Sqlite(log) = &storage else {
                    anyhow::bail!("gamify restore restores the embedded database; for PostgreSQL use pg_restore");
                };
                let (log, file) = (log.clone(), file.clone());
                let copied = tokio::task::spawn_blocking(move || {
                    gamify_store::sqlite::backup::restore(&file, &log)
                })
                .await??;
                println!(
                    "restored: {} events, {} ledger entries; the next start rebuilds the derived tables",
                    copied.events, copied.ledger_entries
                );
                Ok(())
            }
            Command::Export {
                out,
                brief,
                user,
                from,
                to,
            } => {
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                let filter =
                    export::parse_filter(user.as_deref(), from.as_deref(), to.as_deref())?;
                if let Some(dir) = brief {
                    let (events, balances) =
                        export::write_brief_files(&engine, &filter, &dir, |file, rows| {
                            tracing::info!(file, rows, "exporting");
                        })
                        .await?;
                    tracing::info!(events, balances, dir = %dir.display(), "exported");
                    return Ok(());
                }
                write_export(&engine, filter, &out).await
            }
            Command::Import { file } => {
                let open = || {
                    std::fs::File::open(&file)
                        .map(std::io::BufReader::new)
                        .with_context(|| format!("cannot read {}", file.display()))
                };
                // A file that cannot be read leaves no database behind.
                open()?;
                let engine = Engine::open_for_maintenance(&storage, rules.clone(), true)
                    .await
                    .with_context(cannot)?;
                import::check_empty(&engine).await?;
                // The whole file first: a damaged or cut-short one is
                // refused before the target changes.
                import::check(open()?, |rows| {
                    tracing::info!(rows, "checking the file");
                })
                .await
                .context("the file cannot be imported; nothing was written")?;
                let counts = import::load(&engine, open()?, |rows| {
                    tracing::info!(rows, "importing");
                })
                .await
                .context(
                    "import failed while writing; the target may now hold part of the file: \
                     empty it (delete the SQLite files, or drop and recreate the schema) before \
                     importing again",
                )?;
                drop(engine);
                // Reopened: on SQLite this rebuilds users' state from the
                // imported ledger, with the rules, which the comparison checks.
                let engine = Engine::open_for_maintenance(&storage, rules, false)
                    .await
                    .with_context(cannot)?;
                let lines = import::compare(&engine, open()?).await?;
                // Redis (if it keeps the boards) has not seen the imported
                // rows: rebuilt now, so that verify compares it too.
                engine
                    .rebuild_boards()
                    .await
                    .context("imported, but the leaderboards in Redis could not be rebuilt")?;
                let findings = engine.verify().await?;
                for f in &findings {
                    println!("{}: {}", f.subject, f.message);
                }
                if !findings.is_empty() {
                    anyhow::bail!("imported, but {} invariant breaches found", findings.len());
                }
                println!(
                    "imported {counts:?}; a new export equals the file ({lines} lines) and every invariant holds"
                );
                Ok(())
            }
            Command::Openapi | Command::Config => Ok(()),
        }
    })
}

/// The storage of `tenant` (none or `default`: the configured storage),
/// refused unless the tenant list holds it, so that a mistyped name makes
/// no empty database.
async fn storage_of(
    storage: Storage,
    rules: &gamify::Rules,
    tenant: Option<&str>,
) -> anyhow::Result<Storage> {
    let Some(name) = tenant.filter(|t| *t != gamify_store::tenants::DEFAULT_TENANT) else {
        return Ok(storage);
    };
    if !tenant_list(&storage, rules)
        .await?
        .iter()
        .any(|t| t.name == name)
    {
        anyhow::bail!(
            "no tenant named {name:?}; `gamify tenants list` shows them, `gamify tenants create` makes one"
        );
    }
    gamify::tenants::tenant_storage(&storage, name).map_err(anyhow::Error::msg)
}

/// Every tenant of the deployment whose default tenant is at `storage`,
/// `default` first, read with the store opened for maintenance (on SQLite,
/// the server must be stopped) and closed again.
async fn tenant_list(
    storage: &Storage,
    rules: &gamify::Rules,
) -> anyhow::Result<Vec<gamify::model::TenantResponse>> {
    let default = Engine::open_for_maintenance(storage, rules.clone(), false)
        .await
        .with_context(|| format!("cannot open storage ({storage}) to read the tenant list"))?;
    Tenancy::from(default)
        .list()
        .await
        .context("cannot read the tenant list")
}

/// Streams the NDJSON export to `out`, page by page, logging progress.
async fn write_export(
    engine: &Engine,
    filter: gamify_store::export::ExportFilter,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut sink: Box<dyn Write> = if out.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        let file = std::fs::File::create_new(out)
            .with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
        Box::new(std::io::BufWriter::new(file))
    };
    let mut exporter = export::Exporter::new(engine.clone(), filter);
    let mut last = std::time::Instant::now();
    while let Some(chunk) = exporter.next_chunk().await? {
        sink.write_all(chunk.as_bytes())?;
        if last.elapsed() >= std::time::Duration::from_secs(1) {
            tracing::info!(lines = ?exporter.counts(), "exporting");
            last = std::time::Instant::now();
        }
    }
    sink.flush()?;
    tracing::info!(lines = ?exporter.counts(), "exported");
    Ok(())
}

/// Makes the configured rules current, binds the address, starts the
/// default tenant's background work and every other tenant, then serves
/// until a shutdown signal.
async fn start_and_serve(
    config: Config,
    tenancy: &Tenancy,
    rule_source: gamify::config::RuleSource,
    webhooks: gamify::webhooks::WebhookSettings,
    nats: Option<gamify::bus::NatsSettings>,
    insecure_no_auth: bool,
) -> anyhow::Result<()> {
    let engine = tenancy.default_engine();
    let version = engine
        .adopt_configured_rules(&rule_source)
        .await
        .context("cannot make the configured rules current")?;
    tracing::info!(rules_version = version, "scoring with these rules");
    // Bound before any background work starts, so that a port in use ends
    // the process before it sweeps or delivers anything.
    let listener = listen(&config, engine, insecure_no_auth).await?;
    tokio::spawn(engine.clone().run_expiry_sweeps());
    engine
        .keep_forwarding(webhooks.forward.as_ref())
        .await
        .context("cannot set up GAMIFY_EXTERNAL_API forwarding")?;
    tokio::spawn(engine.clone().run_webhook_sweeps(webhooks.clone()));
    if config.webhooks.send {
        tokio::spawn(engine.clone().run_webhook_deliveries(webhooks));
    } else {
        tracing::warn!(
            "webhooks.send is false: this node sends no webhook deliveries; another node must"
        );
    }
    if let Some(nats) = nats {
        let engine = engine.clone();
        tokio::spawn(async move {
            // A panic (a bug, logged by the panic hook) ends only that run
            // of the consumer: ingestion from NATS starts again instead of
            // stopping silently while HTTP carries on.
            loop {
                let run = tokio::spawn(gamify::bus::consume(engine.clone(), nats.clone()));
                match run.await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "NATS consumer stopped");
                        break;
                    }
                    Err(e) if e.is_panic() => {
                        tracing::error!("NATS consumer panicked; starting it again in 5 s");
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    }
                    Err(_) => break,
                }
            }
        });
    }
    let tenants = tenancy.open_all().await.with_context(|| {
        format!(
            "cannot open the tenants (this process may hold {} files open at once, \
             `ulimit -n`; each tenant on SQLite holds about 32)",
            open_files_limit()
        )
    })?;
    if tenants > 0 {
        tracing::info!(tenants, "serving tenants besides the default one");
    }
    if config.storage.redis.url.is_some() && matches!(config.storage()?, Storage::Sqlite(_)) {
        tracing::warn!(
            "REDIS_URL is ignored with the embedded database: its in-process leaderboards are faster than Redis"
        );
    }
    tracing::info!(addr = %listener.local_addr()?, storage = %config.storage()?, "listening");
    http::serve(listener, tenancy.clone(), shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Checks that the node may serve as configured (an API key, or loopback,
/// or `--insecure-no-auth`) and binds its address.
async fn listen(
    config: &Config,
    engine: &Engine,
    insecure_no_auth: bool,
) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = config.addr()?;
    engine
        .refresh_keys()
        .await
        .context("cannot read the API keys")?;
    if engine.key_ring().is_open() {
        if !addr.ip().is_loopback() && !insecure_no_auth {
            anyhow::bail!(
                "refusing to serve on {addr} without an API key: set GAMIFY_API_KEY, or make a key \
                 with `gamify keys create`, or pass --insecure-no-auth to let anyone who can reach \
                 {addr} record and read"
            );
        }
        tracing::warn!(
            %addr,
            "no API key exists: ingest and read need no key and the admin routes are off \
             (set GAMIFY_API_KEY or run `gamify keys create`)"
        );
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Logs go to standard output for `serve` (a service's log stream) and to
/// standard error for every other command, whose standard output is its
/// answer: `gamify export > all.ndjson` must hold only the export.
fn init_logging(config: &Config, serving: bool) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level: not a valid filter: {:?}", config.log.level))?;
    let writer = if serving {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if config.log.format == "json" {
        builder
            .json()
            .with_current_span(false)
            .flatten_event(true)
            .init();
    } else {
        builder.init();
    }
    // A panic (a bug) is logged like everything else, with where it
    // happened and on which thread, instead of as a bare line on stderr
    // that a log pipeline reading JSON would drop.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => backtrace.to_string(),
            _ => "set RUST_BACKTRACE=1 to log one".to_owned(),
        };
        tracing::error!(
            panic = gamify::http::panic_message(info.payload()),
            location,
            thread = thread.name().unwrap_or("unnamed"),
            backtrace,
            "panicked: this is a bug"
        );
    }));
    Ok(())
}

/// Raises this process's soft limit on open files to its hard limit, as
/// servers commonly do, and returns it. Every client connection is a file,
/// and so is every SQLite connection of every tenant (about 32 a tenant):
/// a shell's usual soft limit of 1024 would refuse clients, or a start with
/// a hundred tenants, long before the machine has to.
fn raise_open_files_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|_| open_files_limit())
}

/// This process's soft limit on open files (0 if it cannot be read).
fn open_files_limit() -> u64 {
    rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft)
}
