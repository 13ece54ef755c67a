//! Fuzzes the load balancer's scheduler table builders (`vipd::proto::lb::table`) with
//! arbitrary pools: member counts, weights (0 to u32::MAX), names (duplicates included)
//! and table sizes.
//!
//! Run: `cargo xtask fuzz --target lb_table`.
//!
//! Properties, for every builder: no panic; every entry names a member whose weight is
//! above 0; every weighted member has an entry when the table has room for all of them
//! (a server of weight 1 beside one of 65535 still gets flows). `source_hash` and
//! `maglev` (prime sizes) fill the whole table when any member has a weight and are
//! empty otherwise; `sequence` stays within its limit; `rr` lists each weighted member
//! once, in order.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use vipd::proto::lb::table::{self, Member};
use vipd_common::lb::{LB_BACKENDS_PER_SERVICE, LB_TABLE_SIZE};

/// Prime table sizes (Maglev needs a prime to visit every slot, paper §3.4): the
/// production size and small ones where rounding and scaling show.
const SIZES: [usize; 6] = [LB_TABLE_SIZE as usize, 2, 3, 7, 13, 251];

struct Pool {
    names: Vec<String>,
    weights: Vec<u32>,
    size: usize,
    limit: usize,
}

fn pool(u: &mut Unstructured<'_>) -> Result<Pool> {
    let size = SIZES[usize::from(u.arbitrary::<u8>()?) % SIZES.len()];
    let limit = usize::from(u.arbitrary::<u16>()?) % (LB_TABLE_SIZE as usize + 1);
    let count = usize::from(u.arbitrary::<u8>()?) % LB_BACKENDS_PER_SERVICE as usize;
    let mut names = Vec::with_capacity(count);
    let mut weights = Vec::with_capacity(count);
    for _ in 0..count {
        // Mostly distinct addr:port names, as the configuration gives; sometimes a
        // repeated or odd one.
        let name = match u.arbitrary::<u8>()? % 8 {
            0 => u.arbitrary::<&str>()?.to_owned(),
            _ => format!(
                "198.51.100.{}:{}",
                u.arbitrary::<u8>()?,
                u.arbitrary::<u16>()?
            ),
        };
        names.push(name);
        weights.push(match u.arbitrary::<u8>()? % 4 {
            0 => 0,
            1 => u.arbitrary::<u32>()?,
            _ => u32::from(u.arbitrary::<u8>()?),
        });
    }
    Ok(Pool {
        names,
        weights,
        size,
        limit,
    })
}

/// Every entry names a weighted member; with `room` for all of them, every weighted
/// member has an entry (a server with weight 1 next to one with 65535 still gets flows).
fn check_members(table: &[u32], members: &[Member<'_>], room: usize, what: &str) {
    for &index in table {
        let member = members.get(index as usize);
        assert!(
            member.is_some_and(|m| m.weight > 0),
            "{what}: entry {index} is not a weighted member of {members:?}"
        );
    }
    let weighted = members.iter().filter(|m| m.weight > 0).count();
    if weighted <= room {
        for (index, member) in members.iter().enumerate() {
            if member.weight > 0 {
                assert!(
                    table.contains(&(index as u32)),
                    "{what}: weighted member {index} has no entry; weights {:?}, room {room}",
                    members.iter().map(|m| m.weight).collect::<Vec<_>>()
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(pool) = pool(&mut Unstructured::new(data)) else {
        return;
    };
    let members: Vec<Member<'_>> = pool
        .names
        .iter()
        .zip(&pool.weights)
        .map(|(name, &weight)| Member { name, weight })
        .collect();
    let weighted = members.iter().filter(|m| m.weight > 0).count();

    for (what, table) in [
        ("sh", table::source_hash(&members, pool.size)),
        ("mh", table::maglev(&members, pool.size)),
    ] {
        check_members(&table, &members, pool.size, what);
        let expected = if weighted > 0 { pool.size } else { 0 };
        assert_eq!(table.len(), expected, "{what}: table length");
    }

    let rr = table::sequence(&members, false, pool.limit);
    check_members(&rr, &members, pool.limit, "rr");
    let expected: Vec<u32> = (0..members.len() as u32)
        .filter(|&i| members[i as usize].weight > 0)
        .take(pool.limit)
        .collect();
    assert_eq!(rr, expected, "rr: each weighted member once, in order");

    let wrr = table::sequence(&members, true, pool.limit);
    check_members(&wrr, &members, pool.limit, "wrr");
    assert!(
        wrr.len() <= pool.limit,
        "wrr: {} > limit {}",
        wrr.len(),
        pool.limit
    );
});
