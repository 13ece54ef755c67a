//! What happens around a state change besides the protocol: notify commands (keepalived
//! `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` / `notify`) and an
//! e-mail through the configured SMTP server.
//!
//! Everything here runs on its own task: a slow script or an unreachable mail server
//! never delays the election. Failures are logged with their cause and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::config::{Command, InstanceSpec, MailSettings};
use crate::track::{RunOutcome, run_once_niced};

/// How long a notify command may run before it is killed (keepalived has no limit; a
/// hung script must not pile up processes forever).
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// Notify commands start at this niceness. A takeover's scripts (a handful of process
/// starts at the same moment) otherwise take the CPUs from the kernel's packet work and
/// the clients' traffic just as the VIPs move; measured on a 2-core VM, a notify script
/// like the seed's doubled the graceful outage (p99 10.2 → 3.5 ms at 10 ms adverts with
/// this). They still run at once on an idle CPU; what they start inherits it, so a
/// script that starts a service should do it through its service manager.
pub const NOTIFY_NICENESS: i32 = 10;

/// Failure counters shared with the notify tasks.
#[derive(Debug, Default)]
pub struct NotifyCounters {
    /// Notify commands run.
    pub commands_run: AtomicU64,
    /// Notify commands that failed (non-zero exit, timeout, could not start).
    pub command_failures: AtomicU64,
    /// Mails handed to the SMTP server.
    pub mails_sent: AtomicU64,
    /// Mails that could not be sent.
    pub mail_failures: AtomicU64,
}

/// The state names notify commands and mails use (keepalived's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyState {
    /// Became master.
    Master,
    /// Became backup.
    Backup,
    /// Entered fault.
    Fault,
    /// The instance stopped (daemon shutdown).
    Stop,
}

impl NotifyState {
    /// `MASTER`, `BACKUP`, `FAULT`, `STOP`.
    pub fn name(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
        }
    }
}

/// Runs the notify commands and sends the mail for `instance` entering `state`, each on
/// its own task. Returns the tasks so a shutdown can wait for them briefly.
pub fn on_state(
    instance: &InstanceSpec,
    state: NotifyState,
    priority: u8,
    mail: Option<&MailSettings>,
    router_id: &str,
    counters: &Arc<NotifyCounters>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let specific = match state {
        NotifyState::Master => instance.notify.master.clone(),
        NotifyState::Backup => instance.notify.backup.clone(),
        NotifyState::Fault => instance.notify.fault.clone(),
        NotifyState::Stop => instance.notify.stop.clone(),
    };
    if let Some(command) = specific {
        tasks.push(spawn_command(
            instance.name.clone(),
            command,
            counters.clone(),
        ));
    }
    if let Some(mut command) = instance.notify.any.clone() {
        // keepalived's generic notify: `<script> INSTANCE <name> <STATE> <priority>`.
        command.argv.extend([
            "INSTANCE".to_owned(),
            instance.name.clone(),
            state.name().to_owned(),
            priority.to_string(),
        ]);
        tasks.push(spawn_command(
            instance.name.clone(),
            command,
            counters.clone(),
        ));
    }
    if let Some(mail) = mail_for(instance, mail) {
        let message = StateMail {
            router_id: router_id.to_owned(),
            kind: MailKind::Instance,
            instance: instance.name.clone(),
            state,
            priority,
            vips: instance
                .virtual_addresses
                .iter()
                .map(|v| v.address.to_string())
                .collect(),
        };
        tasks.push(spawn_mail(mail, message, counters));
    }
    tasks
}

/// Sends `message` on its own task, counting the outcome.
fn spawn_mail(
    mail: &MailSettings,
    message: StateMail,
    counters: &Arc<NotifyCounters>,
) -> tokio::task::JoinHandle<()> {
    let mail = mail.clone();
    let counters = counters.clone();
    tokio::spawn(async move {
        match send_mail(&mail, &message).await {
            Ok(()) => {
                counters.mails_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counters.mail_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(instance = %message.instance, server = %mail.smtp_server, error = %e, "state-change mail not sent");
            }
        }
    })
}

/// The mail settings to use for `instance`'s state change: only when it has
/// `smtp_alert` (its own or inherited from the global one, as in keepalived), never merely
/// because an SMTP server is configured.
pub fn mail_for<'m>(
    instance: &InstanceSpec,
    mail: Option<&'m MailSettings>,
) -> Option<&'m MailSettings> {
    mail.filter(|_| instance.smtp_alert)
}

/// Runs a sync group's notify commands for its new `state`: the specific one, then the
/// generic `notify` with `GROUP <name> <STATE> 0` appended (keepalived's order); and mails
/// when the group has `smtp_alert` (its own, else the global one).
pub fn on_group_state(
    group: &crate::config::SyncGroup,
    state: NotifyState,
    mail: Option<&MailSettings>,
    router_id: &str,
    counters: &Arc<NotifyCounters>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let label = format!("group {}", group.name);
    let specific = match state {
        NotifyState::Master => group.notify.master.clone(),
        NotifyState::Backup => group.notify.backup.clone(),
        NotifyState::Fault => group.notify.fault.clone(),
        NotifyState::Stop => group.notify.stop.clone(),
    };
    let mut tasks = Vec::new();
    if let Some(command) = specific {
        tasks.push(spawn_command(label.clone(), command, counters.clone()));
    }
    if let Some(mut command) = group.notify.any.clone() {
        command.argv.extend([
            "GROUP".to_owned(),
            group.name.clone(),
            state.name().to_owned(),
            "0".to_owned(),
        ]);
        tasks.push(spawn_command(label, command, counters.clone()));
    }
    if let Some(mail) = mail.filter(|_| group.smtp_alert) {
        let message = StateMail {
            router_id: router_id.to_owned(),
            kind: MailKind::Group,
            instance: group.name.clone(),
            state,
            priority: 0,
            vips: Vec::new(),
        };
        tasks.push(spawn_mail(mail, message, counters));
    }
    tasks
}

fn spawn_command(
    instance: String,
    command: Command,
    counters: Arc<NotifyCounters>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        counters.commands_run.fetch_add(1, Ordering::Relaxed);
        let outcome = run_once_niced(&command, NOTIFY_TIMEOUT, NOTIFY_NICENESS).await;
        if !outcome.ok() {
            counters.command_failures.fetch_add(1, Ordering::Relaxed);
            let why = match &outcome {
                RunOutcome::Exited(Some(code)) => format!("exit code {code}"),
                RunOutcome::Exited(None) => "killed by a signal".to_owned(),
                RunOutcome::TimedOut => format!("still running after {NOTIFY_TIMEOUT:?}, killed"),
                RunOutcome::SpawnFailed(e) => format!("could not start: {e}"),
            };
            tracing::warn!(%instance, command = ?command.argv, %why, "notify command failed");
        }
    })
}

/// Whose state a mail reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    /// A VRRP instance.
    Instance,
    /// A sync group.
    Group,
}

/// What a state-change mail says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMail {
    /// The router's id (global router_id, or the host name).
    pub router_id: String,
    /// Instance or group.
    pub kind: MailKind,
    /// Instance (or group) name.
    pub instance: String,
    /// New state.
    pub state: NotifyState,
    /// Priority in effect.
    pub priority: u8,
    /// The instance's VIPs.
    pub vips: Vec<String>,
}

impl StateMail {
    /// `[router_id] VRRP Instance VI_1 - Entering MASTER state` (or `VRRP Group G`), as
    /// keepalived words it.
    pub fn subject(&self) -> String {
        format!(
            "[{}] VRRP {} {} - Entering {} state",
            self.router_id,
            self.kind_name(),
            self.instance,
            self.state.name()
        )
    }

    /// The body.
    pub fn body(&self) -> String {
        match self.kind {
            MailKind::Instance => format!(
                "=> VRRP Instance {} is now {} on {} (priority {}) <=\nVIPs: {}\n",
                self.instance,
                self.state.name(),
                self.router_id,
                self.priority,
                self.vips.join(", ")
            ),
            MailKind::Group => format!(
                "=> VRRP Group {} is now {} on {} <=\n",
                self.instance,
                self.state.name(),
                self.router_id
            ),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            MailKind::Instance => "Instance",
            MailKind::Group => "Group",
        }
    }
}

/// Errors sending a mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address in the configuration is not a mailbox.
    #[error("bad mail address {address:?}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// Building the message failed.
    #[error("building the mail: {0}")]
    Build(String),
    /// The SMTP exchange failed.
    #[error("SMTP: {0}")]
    Smtp(String),
    /// The server did not answer in time.
    #[error("SMTP server did not answer within {0:?}")]
    Timeout(Duration),
}

/// Sends one state-change mail over plain SMTP (as keepalived does: no TLS, no auth).
pub async fn send_mail(settings: &MailSettings, mail: &StateMail) -> Result<(), MailError> {
    let mailbox = |address: &str| {
        address.parse::<Mailbox>().map_err(|e| MailError::Address {
            address: address.to_owned(),
            reason: e.to_string(),
        })
    };
    let mut builder = Message::builder()
        .from(mailbox(&settings.from)?)
        .subject(mail.subject());
    for to in &settings.to {
        builder = builder.to(mailbox(to)?);
    }
    let message = builder
        .body(mail.body())
        .map_err(|e| MailError::Build(e.to_string()))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.smtp_server)
        .port(settings.smtp_port)
        .timeout(Some(settings.smtp_connect_timeout))
        .build();
    // The transport's timeout covers each read/write; bound the whole exchange too.
    let limit = settings.smtp_connect_timeout * 2;
    match tokio::time::timeout(limit, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(MailError::Smtp(e.to_string())),
        Err(_) => Err(MailError::Timeout(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first instance of a config with mail settings, `global` and `instance` lines
    /// added to their tables.
    fn loaded(global: &str, instance: &str) -> crate::config::Config {
        let text = format!(
            "[global]\nnotification_email = [\"ops@example.com\"]\nsmtp_server = \"192.0.2.25\"\n{global}\n\
             [instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
             virtual_ipaddress = [\"192.0.2.100\"]\n{instance}\n"
        );
        match crate::config::parse_toml(&text, "vipd.toml") {
            Ok(loaded) => loaded.config,
            Err(errors) => panic!("{errors}\n--- in ---\n{text}"),
        }
    }

    #[test]
    fn mail_only_with_smtp_alert() {
        let cases = [
            // keepalived's default is off: an SMTP server alone sends nothing.
            ("", "", false),
            ("smtp_alert = true", "", true),
            ("", "smtp_alert = true", true),
            // The instance's own setting wins over the global one, both ways.
            ("smtp_alert = true", "smtp_alert = false", false),
            ("smtp_alert = false", "smtp_alert = true", true),
        ];
        for (global, instance, expected) in cases {
            let config = loaded(global, instance);
            let mail = config.global.mail.as_ref();
            assert!(mail.is_some());
            let spec = &config.instances[0];
            assert_eq!(
                mail_for(spec, mail).is_some(),
                expected,
                "global {global:?}, instance {instance:?}"
            );
            // Without mail settings there is nothing to send, smtp_alert or not.
            assert_eq!(mail_for(spec, None), None);
        }
    }

    #[test]
    fn subject_names_router_instance_and_state() {
        let mut mail = StateMail {
            router_id: "LVS_DEVEL".into(),
            kind: MailKind::Instance,
            instance: "VI_1".into(),
            state: NotifyState::Master,
            priority: 100,
            vips: vec!["192.0.2.100".into()],
        };
        assert_eq!(
            mail.subject(),
            "[LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert!(mail.body().contains("192.0.2.100"));
        assert!(mail.body().contains("priority 100"));
        mail.kind = MailKind::Group;
        mail.instance = "VG_1".into();
        mail.state = NotifyState::Fault;
        assert_eq!(
            mail.subject(),
            "[LVS_DEVEL] VRRP Group VG_1 - Entering FAULT state"
        );
        assert!(mail.body().contains("VRRP Group VG_1 is now FAULT"));
    }
}
