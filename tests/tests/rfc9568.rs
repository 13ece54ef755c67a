//! RFC 9568 rules that need two real routers.
//!
//! Lab: [`router_lab`], two vipd on members 0 and 1 (192.0.2.1, 192.0.2.2), VRID 7,
//! VIP 192.0.2.100/24, 100 ms adverts.

use std::time::Duration;

use anyhow::ensure;

use vipd_tests::require_root;
use vipd_tests::vipd::{InstanceConf, Router, router_lab, stop_all, wait_only_holder};

const ELECTION: Duration = Duration::from_secs(5);

fn owner() -> InstanceConf {
    InstanceConf::new("VI_1", 7, 255, "192.0.2.100/24").set("advert_int", "\"100ms\"")
}

/// Erratum 8298 (RFC 9568 §7.1): two routers both configured as address owner
/// (priority 255) both start Active (§6.4.1), hear each other (RFC 5798 had the owner
/// discard every advert, so both stayed Active for good) and the §6.4.3 tie-break by
/// primary address leaves the higher one, 192.0.2.2, with the VIP.
#[test]
fn duplicate_owners_leave_one_master() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = router_lab("dupown", 2, false)?;
    let mut routers = vec![
        Router::new(lan.member(0), &scratch, "r1", &[owner()])?,
        Router::new(lan.member(1), &scratch, "r2", &[owner()])?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    routers[1].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[0].wait_instance("BACKUP of 192.0.2.2", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == "192.0.2.2"
    })?;
    wait_only_holder(&lan, "192.0.2.100", 1, ELECTION)?;
    routers[0].assert_state_holds("VI_1", "BACKUP", Duration::from_millis(500))?;
    ensure!(routers[1].state("VI_1")? == "MASTER");
    // The owner that yielded takes over when the other stops.
    routers[1].stop(Duration::from_secs(5))?;
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    wait_only_holder(&lan, "192.0.2.100", 0, ELECTION)?;
    stop_all(&mut routers)
}
