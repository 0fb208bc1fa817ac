//! The daemon: each bank on its own schedule (its own task, so no two pulls of one bank
//! overlap and one bank's trouble never holds up another), the billing exports on theirs,
//! the HTTP endpoints, systemd readiness and watchdog, and graceful shutdown.
//!
//! A bank's run: pull (ingest each new file, one transaction each) -> match -> record the run
//! in `runs` and the bank's failure streak in `bank_state`. Every bank runs once at start
//! (what arrived while the daemon was down), then at each time its cron schedule names, in
//! the configured time zone. A run that fails is retried at the next scheduled time (HTTP
//! requests are already retried with backoff within the run); after
//! `daemon.unhealthy_after` failed runs in a row the bank is unhealthy (`/readyz`, metrics,
//! `billrecon banks status`) until a run succeeds.
//!
//! Shutdown (SIGTERM/SIGINT): no new runs start; a run in hand may finish its current file
//! within `daemon.shutdown_timeout_secs`, else it is dropped, which rolls back the file's
//! open transaction (nothing half-stored) and records the run as cancelled.

use crate::app::state::DaemonState;
use crate::app::App;
use crate::ingest::pull::{self, PullContext, SourceState};
use crate::metrics::Metrics;
use crate::store::runs::RunStats;
use crate::store::{self, DbContext};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Runs the daemon until `shutdown` fires, serving HTTP on `daemon.http_addr`.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = if app.config.daemon.http_addr.is_empty() {
        None
    } else {
        let l = tokio::net::TcpListener::bind(&app.config.daemon.http_addr)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot listen on {}: {e}", app.config.daemon.http_addr)
            })?;
        Some(l)
    };
    run_with_listener(app, shutdown, listener).await
}

/// [`run`] with the HTTP listener already bound (tests bind port 0 and read the port).
pub async fn run_with_listener(
    app: Arc<App>,
    shutdown: CancellationToken,
    listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<()> {
    // a metrics token that cannot be read stops the start (as a bad config does)
    app.config
        .daemon
        .metrics_token()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let metrics_listener =
        if app.config.daemon.metrics_addr.is_empty() {
            None
        } else {
            let addr = &app.config.daemon.metrics_addr;
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {addr} (daemon.metrics_addr): {e}")
            })?)
        };
    let state = DaemonState::new(app.clone());
    let threshold = i64::from(app.config.daemon.unhealthy_after);
    {
        let mut conn = app.store.pool().acquire().await.op("connecting")?;
        let abandoned = store::runs::close_abandoned(&mut conn).await?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "runs left open by a previous process marked failed"
            );
        }
        let stored = store::runs::states(&mut conn).await?;
        for bank in &app.banks {
            let s = stored.iter().find(|s| s.bank_id == bank.id);
            let failures = s.map(|s| s.consecutive_failures).unwrap_or(0);
            state.update(&bank.id, |h| {
                h.consecutive_failures = failures;
                h.healthy = failures < threshold;
                h.last_success_at = s.and_then(|s| s.last_success_at.clone());
            });
            set_bank_gauges(&state, &bank.id);
        }
    }

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = metrics_listener {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "HTTP: /metrics on its own address");
        let router = crate::api::metrics_router(state.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "metrics HTTP server failed");
            }
        });
    }
    if let Some(listener) = listener {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "HTTP: /healthz /readyz /metrics, finance API /api/v1, workbench /ui/");
        let router = crate::api::router(state.clone());
        let stop = shutdown.clone();
        let d = &app.config.daemon;
        match (&d.tls_cert, &d.tls_key) {
            (Some(cert), Some(key)) => {
                let tls = crate::api::tls::server_config(cert, key, d.client_ca.as_deref())?;
                let handle = axum_server::Handle::new();
                let h = handle.clone();
                tokio::spawn(async move {
                    stop.cancelled().await;
                    h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                });
                let std_listener = listener.into_std()?;
                tasks.spawn(async move {
                    let serve = axum_server::from_tcp(std_listener)
                        .acceptor(crate::api::tls::MtlsAcceptor::new(tls))
                        .handle(handle)
                        .serve(
                            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                        );
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "HTTPS server failed");
                    }
                });
            }
            _ => {
                tasks.spawn(async move {
                    let serve = axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                    )
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "HTTP server failed");
                    }
                });
            }
        }
    }

    // billing exports: first, before any bank runs (payments must meet today's bills), then
    // on their schedule
    if let Err(e) = app.import_billing().await {
        tracing::error!(error = format!("{e:#}"), "billing import failed");
    }
    {
        let (app, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            let Ok(schedule) = crate::config::parse_schedule(&app.config.daemon.billing_schedule)
            else {
                return;
            };
            while sleep_until_next(&schedule, &app, &stop).await {
                if let Err(e) = app.import_billing().await {
                    tracing::error!(error = format!("{e:#}"), "billing import failed");
                }
            }
        });
    }

    // dunning: the plan's notices queued on its schedule; the outbox delivered continuously
    if let Ok(schedule) = crate::config::parse_schedule(&app.config.dunning.schedule) {
        let (app, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            while sleep_until_next(&schedule, &app, &stop).await {
                let today = Utc::now()
                    .with_timezone(&app.config.daemon.tz())
                    .date_naive();
                match crate::dunning::notices::run(&app.config, &app.store, today).await {
                    Ok(s) => tracing::info!(?s, "dunning run"),
                    Err(e) => tracing::error!(error = %e, "dunning run failed"),
                }
            }
        });
    }
    if app.config.dunning.gateway.is_some() {
        let (app, stop) = (app.clone(), shutdown.clone());
        let every = Duration::from_secs(app.config.dunning.delivery_interval_secs);
        tasks.spawn(async move {
            loop {
                match crate::dunning::notices::deliver_due(&app.config, &app.store, Utc::now())
                    .await
                {
                    Ok(s) if s != Default::default() => tracing::info!(?s, "notices delivered"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "notice delivery failed"),
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    // exceptions open too long are escalated (checked every ten minutes)
    if app.config.exceptions.escalate_after_hours > 0 {
        let (app, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            loop {
                match crate::workbench::resolve::escalate(&app.store, &app.config, Utc::now()).await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(escalated = n, "exceptions escalated"),
                    Err(e) => tracing::error!(error = %e, "escalation failed"),
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                }
            }
        });
    }

    // the previous day's reports, published on their schedule
    if let Ok(schedule) = crate::config::parse_schedule(&app.config.reports.publish_schedule) {
        let (app, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            while sleep_until_next(&schedule, &app, &stop).await {
                let yesterday = Utc::now()
                    .with_timezone(&app.config.daemon.tz())
                    .date_naive()
                    - chrono::Duration::days(1);
                match crate::reports::publish::publish(
                    &app.config,
                    &app.store,
                    yesterday,
                    &app.config.reports.dir,
                )
                .await
                {
                    Ok(dir) => {
                        tracing::info!(dir = %dir.display(), "reports published");
                        for r in
                            crate::reports::deliver::deliver(&app.config.reports.post, &dir, None)
                                .await
                        {
                            match r {
                                Ok(d) => {
                                    tracing::info!(url = %d.url, files = d.files, "reports posted")
                                }
                                Err(e) => tracing::error!(error = %e, "posting reports failed"),
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "publishing reports failed"),
                }
            }
        });
    }

    // reports on their own schedules
    for (name, cron) in &app.config.reports.schedules {
        let (Some(kind), Ok(schedule)) = (
            crate::reports::ReportKind::ALL
                .into_iter()
                .find(|k| k.name() == name),
            crate::config::parse_schedule(cron),
        ) else {
            continue; // validated with the config
        };
        let (app, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            while sleep_until_next(&schedule, &app, &stop).await {
                let today = Utc::now().with_timezone(&app.config.daemon.tz()).date_naive();
                let date = kind.default_date(today);
                match crate::reports::publish::publish_one(
                    &app.config,
                    &app.store,
                    kind,
                    date,
                    &app.config.reports.dir,
                )
                .await
                {
                    Ok(dir) => {
                        tracing::info!(report = kind.name(), dir = %dir.display(), "report published");
                        for r in crate::reports::deliver::deliver(
                            &app.config.reports.post,
                            &dir,
                            Some(kind.name()),
                        )
                        .await
                        {
                            if let Err(e) = r {
                                tracing::error!(error = %e, "posting a report failed");
                            }
                        }
                    }
                    Err(e) => tracing::error!(report = kind.name(), error = %e, "publishing a report failed"),
                }
            }
        });
    }

    for bank in app.banks.iter().filter(|b| b.source.is_some()) {
        let (state, stop, id) = (state.clone(), shutdown.clone(), bank.id.clone());
        tasks.spawn(async move { bank_loop(state, id, stop).await });
    }

    notify(&[sd_notify::NotifyState::Ready]);
    let mut watchdog_usec = 0;
    if sd_notify::watchdog_enabled(false, &mut watchdog_usec) && watchdog_usec > 0 {
        let (stop, every) = (shutdown.clone(), Duration::from_micros(watchdog_usec / 2));
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(every) => notify(&[sd_notify::NotifyState::Watchdog]),
                }
            }
        });
    }
    tracing::info!(banks = app.banks.len(), "daemon started");

    shutdown.cancelled().await;
    tracing::info!("shutting down: no new runs; work in hand may finish");
    notify(&[sd_notify::NotifyState::Stopping]);
    let grace =
        Duration::from_secs(app.config.daemon.shutdown_timeout_secs) + Duration::from_secs(5);
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("tasks still running after the shutdown timeout; stopping them");
        tasks.shutdown().await;
    }
    app.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!(error = %e, "sd_notify");
    }
}

/// Sleeps until the schedule's next time; false when shutdown came first or the schedule has
/// no next time.
async fn sleep_until_next(schedule: &cron::Schedule, app: &App, stop: &CancellationToken) -> bool {
    let Some(next) = schedule.upcoming(app.config.daemon.tz()).next() else {
        return false;
    };
    let wait = (next.with_timezone(&Utc) - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

fn next_run(schedule: &cron::Schedule, app: &App) -> Option<DateTime<Utc>> {
    schedule
        .upcoming(app.config.daemon.tz())
        .next()
        .map(|t| t.with_timezone(&Utc))
}

async fn bank_loop(state: Arc<DaemonState>, bank_id: String, stop: CancellationToken) {
    let app = state.app.clone();
    let Some(bank) = app.banks.iter().find(|b| b.id == bank_id).cloned() else {
        return;
    };
    let mut source = SourceState::default();
    let mut unrecorded = Vec::new();
    let mut trigger = "start";
    loop {
        run_bank(&state, &bank, &mut source, &mut unrecorded, trigger, &stop).await;
        trigger = "schedule";
        let next = next_run(&bank.schedule, &app);
        state.update(&bank.id, |h| {
            h.next_run_at = next.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        });
        if stop.is_cancelled() || !sleep_until_next(&bank.schedule, &app, &stop).await {
            break;
        }
    }
}

/// A run the database would not take (locked, full, read-only): written to `runs` as soon as
/// it takes writes again, before the next run.
enum Unrecorded {
    /// Not even started: recorded as a failed run of its own.
    Run {
        trigger: String,
        started_at: String,
        error: String,
    },
    /// Started, but its end was not written.
    End {
        run_id: i64,
        stats: RunStats,
        outcome: String,
        error: Option<String>,
    },
}

/// Writes what earlier runs could not; keeps what still cannot be written.
async fn record_unrecorded(app: &App, bank_id: &str, unrecorded: &mut Vec<Unrecorded>) {
    if unrecorded.is_empty() {
        return;
    }
    let Ok(mut conn) = app.store.write_pool().acquire().await else {
        return;
    };
    let mut left = Vec::new();
    for u in std::mem::take(unrecorded) {
        let done = match &u {
            Unrecorded::Run {
                trigger,
                started_at,
                error,
            } => store::runs::record_failed(&mut conn, bank_id, trigger, started_at, error).await,
            Unrecorded::End {
                run_id,
                stats,
                outcome,
                error,
            } => {
                store::runs::finish(
                    &mut conn,
                    *run_id,
                    bank_id,
                    stats,
                    outcome,
                    error.as_deref(),
                )
                .await
            }
        };
        if let Err(e) = done {
            tracing::debug!(bank_id, error = %e, "a run still cannot be recorded");
            left.push(u);
        }
    }
    *unrecorded = left;
}

/// One run of one bank, recorded in `runs`. Never fails: failures are recorded (in the
/// metrics and the bank's health at once, in `runs` as soon as the database takes writes).
async fn run_bank(
    state: &DaemonState,
    bank: &crate::config::Bank,
    source: &mut SourceState,
    unrecorded: &mut Vec<Unrecorded>,
    trigger: &str,
    stop: &CancellationToken,
) {
    let app = &state.app;
    let started = Instant::now();
    let started_at = store::now();
    record_unrecorded(app, &bank.id, unrecorded).await;
    let run_id = match app.store.write_pool().acquire().await {
        Ok(mut conn) => store::runs::start(&mut conn, &bank.id, trigger).await,
        Err(e) => Err(store::StoreError::Db {
            op: "connecting",
            source: e,
        }),
    };
    let run_id = match run_id {
        Ok(id) => id,
        Err(e) => {
            // the database takes no writes (locked by another process, disk full, read-only):
            // nothing can be ingested; the failure counts now and is written later
            let error = format!("cannot record the run: {e}");
            tracing::error!(bank_id = %bank.id, %error, "run failed; the next scheduled run tries again");
            settle_run(
                state,
                bank,
                &RunStats::default(),
                started,
                "failed",
                Some(&error),
            );
            unrecorded.push(Unrecorded::Run {
                trigger: trigger.to_string(),
                started_at,
                error,
            });
            return;
        }
    };
    let mut stats = RunStats::default();
    // At shutdown the pull stops between files; a file still in hand after the grace period
    // is dropped with its transaction (rolled back).
    let result = {
        let cx = PullContext {
            store: &app.store,
            data_dir: &app.config.storage.data_dir,
            currency: app.config.ledger.currency,
            cancel: stop,
        };
        let work = async {
            pull::pull(&cx, bank, source, &mut stats).await?;
            let summary = app.match_pending().await?;
            Ok::<_, pull::PullFailure>(summary)
        };
        tokio::pin!(work);
        let grace = Duration::from_secs(app.config.daemon.shutdown_timeout_secs);
        tokio::select! {
            r = &mut work => Some(r),
            _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => None,
        }
    };
    let (outcome, error) = match &result {
        Some(Ok(summary)) => {
            state
                .metrics
                .record_match(summary, app.config.ledger.currency.exponent());
            if stop.is_cancelled() {
                ("cancelled", None)
            } else {
                ("ok", None)
            }
        }
        Some(Err(e)) => ("failed", Some(e.to_string())),
        None => (
            "cancelled",
            Some("shutdown timeout: the file in hand was rolled back".to_string()),
        ),
    };
    settle_run(state, bank, &stats, started, outcome, error.as_deref());
    let recorded = match app.store.write_pool().acquire().await {
        Ok(mut conn) => {
            store::runs::finish(
                &mut conn,
                run_id,
                &bank.id,
                &stats,
                outcome,
                error.as_deref(),
            )
            .await
        }
        Err(e) => Err(store::StoreError::Db {
            op: "connecting",
            source: e,
        }),
    };
    if let Err(e) = recorded {
        tracing::error!(bank_id = %bank.id, error = %e, "cannot record the end of a run; it is written when the database takes writes again");
        unrecorded.push(Unrecorded::End {
            run_id,
            stats,
            outcome: outcome.to_string(),
            error,
        });
    }
}

/// A run's end in the metrics, the log and the bank's health.
fn settle_run(
    state: &DaemonState,
    bank: &crate::config::Bank,
    stats: &RunStats,
    started: Instant,
    outcome: &str,
    error: Option<&str>,
) {
    let app = &state.app;
    let label = Metrics::bank(&bank.id);
    let m = &state.metrics;
    m.files.get_or_create(&label).inc_by(stats.files as u64);
    m.rejected_files
        .get_or_create(&label)
        .inc_by(stats.rejected as u64);
    m.payments_ingested
        .get_or_create(&label)
        .inc_by(stats.payments as u64);
    m.bytes.get_or_create(&label).inc_by(stats.bytes as u64);
    m.pull_seconds
        .get_or_create(&label)
        .observe(started.elapsed().as_secs_f64());
    m.runs
        .get_or_create(&crate::metrics::RunLabel {
            bank: bank.id.clone(),
            outcome: outcome.into(),
        })
        .inc();
    match outcome {
        "failed" => {
            m.pull_failures.get_or_create(&label).inc();
            tracing::warn!(bank_id = %bank.id, error = error.unwrap_or(""), "run failed; the next scheduled run tries again");
        }
        _ if stats.files + stats.rejected > 0 => {
            tracing::info!(bank_id = %bank.id, files = stats.files, rejected = stats.rejected, payments = stats.payments, "run done")
        }
        _ => tracing::debug!(bank_id = %bank.id, outcome, "run done"),
    }
    let threshold = i64::from(app.config.daemon.unhealthy_after);
    state.update(&bank.id, |h| {
        h.last_outcome = Some(outcome.into());
        h.last_error = error.map(str::to_string);
        match outcome {
            "ok" => {
                h.consecutive_failures = 0;
                h.last_success_at = Some(store::now());
            }
            "failed" => h.consecutive_failures += 1,
            _ => {}
        }
        h.healthy = h.consecutive_failures < threshold;
    });
    set_bank_gauges(state, &bank.id);
}

fn set_bank_gauges(state: &DaemonState, bank: &str) {
    let Some(h) = state.banks.lock().ok().and_then(|b| b.get(bank).cloned()) else {
        return;
    };
    let label = Metrics::bank(bank);
    state
        .metrics
        .bank_healthy
        .get_or_create(&label)
        .set(i64::from(h.healthy));
    if let Some(t) = h
        .last_success_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        state
            .metrics
            .last_success
            .get_or_create(&label)
            .set(t.timestamp() as f64);
    }
}
