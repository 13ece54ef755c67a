//! vipd and FRR 8.4 vrrpd on the same VRID (VRRPv3, 100 ms).
//!
//! Lab: a bridged LAN; FRR (zebra + vrrpd, [`Frr`]) on member 0 (192.0.2.1/24) with the
//! macvlan vrrpd needs, vipd on member 1 (192.0.2.2/24). FRR's VIP lives on its macvlan
//! in every state (vrrpd only toggles protodown), so for FRR the state from
//! `show vrrp json` stands for "holds the VIP"; for vipd it is the address on eth0.

use std::time::Duration;

use anyhow::ensure;

use vipd_tests::frr::Frr;
use vipd_tests::vipd::{InstanceConf, Router, Scratch, has_addr, stop_all, wait_addr};
use vipd_tests::{Lan, add_addr, require_root};

const VIP: &str = "192.0.2.100";
const FRR_ADDR: &str = "192.0.2.1";
const ELECTION: Duration = Duration::from_secs(5);

/// FRR (150) is master and vipd (100) follows it; FRR lowered to 50 at run time → vipd
/// preempts and FRR goes backup (it accepts vipd's adverts); vipd's SIGTERM (priority
/// 0) hands back to FRR.
#[test]
fn v3_frr_and_vipd_share_a_vrid() -> anyhow::Result<()> {
    require_root();
    let lan = Lan::new("frr", 2)?;
    add_addr(lan.member(0), "eth0", &format!("{FRR_ADDR}/24"))?;
    add_addr(lan.member(1), "eth0", "192.0.2.2/24")?;
    let scratch = Scratch::new("frr")?;
    let mut frr = Frr::start(
        lan.member(0),
        &scratch,
        "frr",
        7,
        150,
        100,
        "192.0.2.100/24",
    )?;
    frr.wait_state("Master", ELECTION)?;

    let conf = InstanceConf::new("VI_1", 7, 100, "192.0.2.100/24").set("advert_int", "\"100ms\"");
    let mut vipd = Router::new(lan.member(1), &scratch, "vipd", &[conf])?;
    vipd.start()?;
    vipd.wait_instance(&format!("BACKUP of {FRR_ADDR}"), "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == FRR_ADDR
    })?;
    vipd.assert_state_holds("VI_1", "BACKUP", Duration::from_millis(500))?;
    ensure!(!has_addr(lan.member(1), "eth0", VIP)?);
    ensure!(vipd.counter("VI_1", "adverts_received")? >= 3);

    frr.set_priority(50)?;
    vipd.wait_state("VI_1", "MASTER", ELECTION)?;
    frr.wait_state("Backup", ELECTION)?;
    wait_addr(lan.member(1), "eth0", VIP, true, ELECTION)?;
    vipd.assert_state_holds("VI_1", "MASTER", Duration::from_millis(500))?;
    ensure!(frr.state()? == "Backup", "{}", frr.logs());

    stop_all(&mut [vipd])?;
    frr.wait_state("Master", ELECTION)?;
    ensure!(!has_addr(lan.member(1), "eth0", VIP)?);
    frr.stop()
}
