//! The keepalived front end's load-balancer half: `virtual_server`,
//! `virtual_server_group`, `real_server` and the checkers → [`DraftVirtualServer`] /
//! [`DraftVsGroup`]. Values stay text here; [`super::super::validate`] checks them.

use super::super::draft::{
    DraftChecker, DraftEndpoint, DraftRealServer, DraftUrl, DraftVirtualServer, DraftVsGroup,
    DraftVsTarget, Sourced,
};
use super::{KeepalivedError, KeepalivedWarning, Mapper, Node, Word};

/// keepalived `virtual_server` keywords vipd does not implement.
const VIRTUAL_SERVER_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "nat_mask",
        "; it only matters to lb_kind NAT, which a DR/XDP balancer cannot do",
    ),
    (
        "ops",
        " (one-packet scheduling); flows are scheduled as usual",
    ),
    (
        "ha_suspend",
        "; the service is balanced whatever the VRRP state",
    ),
    ("persistence_engine", ""),
    ("ip_family", "; the family is the virtual address's"),
    (
        "smtp_alert",
        "; checker state changes are logged, not mailed",
    ),
    ("inhibit_on_failure", "; write it in each real_server"),
    ("retry", "; write it in each checker"),
    ("delay_before_retry", "; write it in each checker"),
    ("connect_timeout", "; write it in each checker"),
    ("warmup", "; write it in each checker"),
    ("flag-3", ""),
    ("sh-flag-3", ""),
    ("mh-flag-3", ""),
];

/// keepalived `real_server` keywords vipd does not implement.
const REAL_SERVER_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "uthreshold",
        "; a DR balancer does not count connections per server",
    ),
    (
        "lthreshold",
        "; a DR balancer does not count connections per server",
    ),
    (
        "smtp_alert",
        "; checker state changes are logged, not mailed",
    ),
    ("retry", "; write it in each checker"),
    ("delay_before_retry", "; write it in each checker"),
    ("connect_timeout", "; write it in each checker"),
    ("warmup", "; write it in each checker"),
    (
        "delay_loop",
        "; write it in each checker or in the virtual_server",
    ),
    (
        "virtualhost",
        "; write it in the HTTP_GET or the virtual_server",
    ),
];

/// keepalived checker keywords vipd does not implement.
const CHECKER_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "bind_port",
        "; the check's source port is the kernel's choice",
    ),
    ("bind_if", ""),
    ("fwmark", "; check connections are not marked"),
    ("http_protocol", "; checks speak HTTP/1.1"),
    (
        "enable_sni",
        "; SSL_GET sends the Host name as SNI when it is a name",
    ),
    ("tls_compliant", ""),
    ("user", "; the command runs as vipd's user"),
    ("alpha", "; write it in the virtual_server"),
    ("log_all_failures", "; every failure is logged"),
    ("dynamic", ""),
    (
        "host",
        "; keepalived deprecates SMTP_CHECK host blocks: write one SMTP_CHECK per host (with connect_ip)",
    ),
];

/// keepalived `url` keywords vipd does not implement.
const URL_UNSUPPORTED: &[(&str, &str)] = &[
    ("regex", "; the body is not matched (use digest)"),
    ("regex_no_match", ""),
    ("regex_options", ""),
    ("regex_stack", ""),
    ("regex_min_offset", ""),
    ("regex_max_offset", ""),
];

impl Mapper<'_> {
    /// `ADDRESS PORT` (the port optional when `port_optional`).
    fn endpoint(&mut self, node: &Node, port_optional: bool) -> Option<DraftEndpoint> {
        match node.args() {
            [address, port] => Some(DraftEndpoint {
                address: address.sourced(),
                port: Some(self.int_word(node.keyword(), port)?),
            }),
            [address] if port_optional => Some(DraftEndpoint {
                address: address.sourced(),
                port: None,
            }),
            args => {
                self.error(
                    node.at(),
                    KeepalivedError::Arity {
                        keyword: node.keyword().into(),
                        expected: "an address and a port",
                        found: args.len(),
                    },
                );
                None
            }
        }
    }

    /// `virtual_server ADDRESS PORT { … }`, `virtual_server group NAME { … }`;
    /// `virtual_server fwmark N` is warned about and skipped.
    pub(super) fn virtual_server(&mut self, node: &Node) {
        let Some(block) = self.block(node) else {
            return;
        };
        let target = match node.args() {
            [word, _] if word.text == "fwmark" => {
                self.warn(
                    node.at(),
                    "virtual_server",
                    KeepalivedWarning::NotImplemented {
                        keyword: words(node),
                        span: self.block_span(node),
                        note: "; firewall-mark services need iptables marks, which an XDP \
                               balancer does not see; the block is skipped"
                            .into(),
                    },
                );
                return;
            }
            [word, name] if word.text == "group" => Some(DraftVsTarget::Group(name.sourced())),
            _ => self.endpoint(node, false).map(DraftVsTarget::Endpoint),
        };
        let context = format!(
            "virtual_server {}",
            words(node).trim_start_matches("virtual_server ")
        );
        let mut vs = DraftVirtualServer::new(Some(node.at()), target);
        for entry in block {
            match entry.keyword() {
                "delay_loop" => vs.delay_loop = self.text(entry),
                "lb_algo" | "lvs_sched" => vs.lb_algo = self.text(entry),
                "lb_kind" | "lvs_method" => vs.lb_kind = self.text(entry),
                "persistence_timeout" => vs.persistence_timeout = self.text(entry),
                "persistence_granularity" => vs.persistence_granularity = self.text(entry),
                "protocol" => vs.protocol = self.text(entry),
                "sorry_server" => vs.sorry_server = self.endpoint(entry, false),
                "sorry_server_inhibit" => vs.sorry_server_inhibit = self.flag(entry),
                "alpha" => vs.alpha = self.flag(entry),
                "omega" => vs.omega = self.flag(entry),
                "quorum" => vs.quorum = self.int(entry),
                "hysteresis" => vs.hysteresis = self.int(entry),
                "quorum_up" => vs.quorum_up = self.command(entry, &context, false),
                "quorum_down" => vs.quorum_down = self.command(entry, &context, false),
                "virtualhost" => vs.virtualhost = self.text(entry),
                "announce"
                | "announce_mode"
                | "announce_standby_med"
                | "announce_standby_prepend"
                | "announce_communities" => self.announce_key(entry, &mut vs.announce),
                // keepalived's IPVS flag names: flag-1 is the fallback, flag-2 the port.
                "sh-port" | "mh-port" | "flag-2" | "sh-flag-2" | "mh-flag-2" => {
                    vs.hash_port = self.flag(entry);
                }
                "sh-fallback" | "mh-fallback" | "flag-1" | "sh-flag-1" | "mh-flag-1" => {
                    vs.hash_fallback = self.flag(entry);
                }
                "real_server" => {
                    if let Some(real) = self.real_server(entry, &context) {
                        vs.real_servers.push(real);
                    }
                }
                _ => self.ignored(entry, &context, VIRTUAL_SERVER_UNSUPPORTED),
            }
        }
        self.draft.virtual_servers.push(vs);
    }

    fn real_server(&mut self, node: &Node, context: &str) -> Option<DraftRealServer> {
        let endpoint = self.endpoint(node, false)?;
        let context = format!(
            "{context}.real_server {}",
            words(node).trim_start_matches("real_server ")
        );
        let mut real = DraftRealServer {
            endpoint,
            weight: None,
            inhibit_on_failure: None,
            notify_up: None,
            notify_down: None,
            checkers: Vec::new(),
        };
        // A real_server without a block is valid keepalived: no checker, always alive.
        for entry in node.block.as_deref().unwrap_or(&[]) {
            match entry.keyword() {
                "weight" => real.weight = self.int(entry),
                "inhibit_on_failure" => real.inhibit_on_failure = self.flag(entry),
                "notify_up" => real.notify_up = self.command(entry, &context, false),
                "notify_down" => real.notify_down = self.command(entry, &context, false),
                "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "MISC_CHECK" | "UDP_CHECK"
                | "PING_CHECK" | "DNS_CHECK" | "SMTP_CHECK" | "FILE_CHECK" | "BFD_CHECK" => {
                    if let Some(block) = self.block(entry) {
                        let checker = self.checker(entry, block, &context);
                        real.checkers.push(checker);
                    }
                }
                _ => self.ignored(entry, &context, REAL_SERVER_UNSUPPORTED),
            }
        }
        Some(real)
    }

    fn checker(&mut self, node: &Node, block: &[Node], context: &str) -> DraftChecker {
        let context = format!("{context}.{}", node.keyword());
        let kind = node.keyword();
        let mut checker = DraftChecker::new(Sourced::new(kind.to_owned(), Some(node.at())));
        for entry in block {
            match entry.keyword() {
                "connect_ip" => checker.connect_ip = self.text(entry),
                "connect_port" => checker.connect_port = self.int(entry),
                "bindto" => checker.bindto = self.text(entry),
                "connect_timeout" => checker.connect_timeout = self.text(entry),
                "retry" | "nb_get_retry" => checker.retry = self.int(entry),
                "delay_before_retry" => checker.delay_before_retry = self.text(entry),
                "delay_loop" => checker.delay_loop = self.text(entry),
                "warmup" => checker.warmup = self.text(entry),
                "virtualhost" => checker.virtualhost = self.text(entry),
                "url" => {
                    if let Some(block) = self.block(entry) {
                        let url = self.url(entry, block, &context);
                        checker.urls.push(url);
                    }
                }
                "misc_path" => checker.misc_path = self.command(entry, &context, false),
                "misc_timeout" => checker.misc_timeout = self.text(entry),
                "misc_dynamic" => checker.misc_dynamic = self.flag(entry),
                // Each kind's own keys; elsewhere they are warned about as keepalived
                // ignores them. Hex strings may have spaces: every word after the keyword.
                "payload" if kind == "UDP_CHECK" => checker.payload = self.joined(entry),
                "require_reply" if kind == "UDP_CHECK" => {
                    checker.require_reply = Some(Sourced::new(true, Some(entry.at())));
                    if !entry.args().is_empty() {
                        checker.reply = self.joined(entry);
                    }
                }
                "min_reply_length" if kind == "UDP_CHECK" => {
                    checker.min_reply_length = self.int(entry)
                }
                "max_reply_length" if kind == "UDP_CHECK" => {
                    checker.max_reply_length = self.int(entry)
                }
                "type" if kind == "DNS_CHECK" => checker.query_type = self.text(entry),
                "name" if kind == "DNS_CHECK" => checker.query_name = self.text(entry),
                "name" if kind == "BFD_CHECK" => checker.bfd = self.text(entry),
                "helo_name" if kind == "SMTP_CHECK" => checker.helo_name = self.text(entry),
                "track_file" if kind == "FILE_CHECK" => checker.track_file = self.text(entry),
                // FILE_CHECK `weight W [reverse|noreverse]`.
                "weight" if kind == "FILE_CHECK" => match entry.args() {
                    [w] => checker.file_weight = self.int_word("weight", w),
                    [w, flag] if matches!(flag.text.as_str(), "reverse" | "noreverse") => {
                        checker.file_weight = self.int_word("weight", w);
                        checker.file_reverse =
                            Some(Sourced::new(flag.text == "reverse", Some(flag.at)));
                    }
                    _ => {
                        self.args(entry, 1, "a weight, then reverse or noreverse");
                    }
                },
                _ => self.ignored(entry, &context, CHECKER_UNSUPPORTED),
            }
        }
        checker
    }

    /// Every argument of `node`, joined by single spaces (a hex string written in
    /// groups); at least one.
    fn joined(&mut self, node: &Node) -> Option<Sourced<String>> {
        if node.args().is_empty() || node.block.is_some() {
            self.args(node, 1, "one or more words");
            return None;
        }
        let at = node.args().first().map(|w| w.at);
        let text: Vec<&str> = node.args().iter().map(|w| w.text.as_str()).collect();
        Some(Sourced::new(text.join(" "), at))
    }

    fn url(&mut self, node: &Node, block: &[Node], context: &str) -> DraftUrl {
        let context = format!("{context}.url");
        let mut url = DraftUrl {
            at: Some(node.at()),
            path: None,
            status_codes: Vec::new(),
            digest: None,
            virtualhost: None,
        };
        for entry in block {
            match entry.keyword() {
                "path" => url.path = self.text(entry),
                "digest" => url.digest = self.text(entry),
                "virtualhost" => url.virtualhost = self.text(entry),
                // One or more codes or ranges: `status_code 200 301-302`.
                "status_code" => {
                    if entry.args().is_empty() || entry.block.is_some() {
                        self.args(entry, 1, "one or more codes");
                    } else {
                        url.status_codes
                            .extend(entry.args().iter().map(Word::sourced));
                    }
                }
                _ => self.ignored(entry, &context, URL_UNSUPPORTED),
            }
        }
        url
    }

    /// `virtual_server_group NAME { ADDRESS[-LAST] [PORT] … }`; `fwmark N` entries are
    /// warned about and skipped.
    pub(super) fn virtual_server_group(&mut self, name: Sourced<String>, block: &[Node]) {
        let context = format!("virtual_server_group.{}", name.value);
        let mut group = DraftVsGroup {
            name,
            members: Vec::new(),
        };
        for entry in block {
            if entry.keyword() == "fwmark" {
                self.warn(
                    entry.at(),
                    &context,
                    KeepalivedWarning::NotImplemented {
                        keyword: words(entry),
                        span: String::new(),
                        note: "; firewall marks are not seen by an XDP balancer; skipped".into(),
                    },
                );
                continue;
            }
            if entry.block.is_some() {
                self.error(
                    entry.at(),
                    KeepalivedError::BlockUnexpected {
                        keyword: entry.keyword().into(),
                    },
                );
                continue;
            }
            // The address is the entry's keyword word; its arguments are the port.
            let address = entry.words.first().map(Word::sourced);
            let port = match entry.args() {
                [] => None,
                [port] => self.int_word("virtual_server_group", port),
                args => {
                    self.error(
                        entry.at(),
                        KeepalivedError::Arity {
                            keyword: entry.keyword().into(),
                            expected: "an address (or range) and a port",
                            found: args.len() + 1,
                        },
                    );
                    continue;
                }
            };
            if let Some(address) = address {
                group.members.push(DraftEndpoint { address, port });
            }
        }
        self.draft.virtual_server_groups.push(group);
    }
}

/// The words of a node's line, joined by spaces.
fn words(node: &Node) -> String {
    node.words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
