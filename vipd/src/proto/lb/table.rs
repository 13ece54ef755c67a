//! Scheduler tables: what the XDP program indexes to give a new flow its real server.
//!
//! Every builder takes the members' effective weights (0: takes no new flow) and
//! returns a table of member indices; the data plane maps indices to backend ids. The
//! builders are deterministic functions of the weights and the members' names, so both
//! VRRP nodes build the same table from the same configuration, and a flow keeps its
//! real server when the VIP moves (for the hash schedulers, whose index is a function of
//! the packet only).
//!
//! - `rr` / `wrr` → [`sequence`]: the order IPVS's wrr visits servers in (largest
//!   weights first, interleaved); the program walks it with a per-CPU cursor.
//! - `sh` → [`source_hash`]: `size` buckets, each server owning `weight` consecutive
//!   buckets in turn, as IPVS sh does with its 256.
//! - `mh` → [`maglev`]: Maglev hashing (Eisenbud et al., NSDI 2016, §3.4) with IPVS mh's
//!   weighting (a server takes `weight / gcd` turns per round), so removing a server
//!   moves only the flows it had, plus about 1/size of the others.

/// A pool member as the table builders see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Stable name (the real server's `addr:port`): Maglev's permutation comes from it,
    /// so it must not depend on the member's position.
    pub name: &'a str,
    /// Effective weight; 0 keeps the member out of the table.
    pub weight: u32,
}

/// Greatest common divisor of the non-zero weights (1 when there are none).
fn weight_gcd(members: &[Member<'_>]) -> u32 {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    members
        .iter()
        .map(|m| m.weight)
        .filter(|&w| w > 0)
        .fold(0, gcd)
        .max(1)
}

/// Per-member turns per round: `weight / gcd`, scaled down so that one round fits in
/// `limit` entries while every non-zero weight keeps at least 1 turn.
///
/// Scaling is `1 + (t − 1) × (limit − n) / (total − n)` over the n weighted members: the
/// n guaranteed turns plus a proportional share of the rest, so the round is at most
/// `limit` and no member is squeezed out by rounding (a plain `t × limit / total` raised
/// to 1 overshot the limit, and the builders, which stop at the limit, then left the
/// last light members out: a weight-1 real server beside one of 65535 got no flows).
/// With more weighted members than `limit` each gets 1 and the builders truncate.
fn turns(members: &[Member<'_>], limit: usize) -> Vec<u64> {
    let g = weight_gcd(members);
    let mut turns: Vec<u64> = members.iter().map(|m| u64::from(m.weight / g)).collect();
    let total: u64 = turns.iter().sum();
    let weighted = turns.iter().filter(|&&t| t > 0).count() as u64;
    let limit = limit.max(1) as u64;
    if total > limit {
        let room = u128::from(limit.saturating_sub(weighted));
        let excess = u128::from(total - weighted);
        for t in turns.iter_mut().filter(|t| **t > 0) {
            // (t − 1) × room / excess ≤ room < 2^64, so the conversion cannot fail. No
            // excess (every turn already 1, more members than `limit`): no share.
            let share = (u128::from(*t - 1) * room).checked_div(excess).unwrap_or(0);
            *t = 1 + u64::try_from(share).unwrap_or(0);
        }
    }
    turns
}

/// rr / wrr: one period of IPVS's weighted round robin, at most `limit` entries.
/// With `weighted == false` (rr) every member with a non-zero weight appears once.
pub fn sequence(members: &[Member<'_>], weighted: bool, limit: usize) -> Vec<u32> {
    if !weighted {
        return (0..members.len() as u32)
            .filter(|&i| members[i as usize].weight > 0)
            .take(limit)
            .collect();
    }
    let turns = turns(members, limit);
    let max = turns.iter().copied().max().unwrap_or(0);
    let mut out = Vec::new();
    // IPVS wrr: the current weight steps down from the largest; at each step every
    // member whose weight reaches it gets a turn, so heavy members come first and the
    // light ones are interleaved, not bunched at the end.
    for current in (1..=max).rev() {
        for (index, &t) in turns.iter().enumerate() {
            if t >= current && out.len() < limit {
                out.push(index as u32);
            }
        }
    }
    out
}

/// sh: `size` buckets, the members taking `weight / gcd` consecutive buckets in turn.
pub fn source_hash(members: &[Member<'_>], size: usize) -> Vec<u32> {
    let turns = turns(members, size);
    if turns.iter().all(|&t| t == 0) {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(size);
    'fill: loop {
        for (index, &t) in turns.iter().enumerate() {
            for _ in 0..t {
                if out.len() == size {
                    break 'fill;
                }
                out.push(index as u32);
            }
        }
    }
    out
}

/// FNV-1a, 64 bits, from `seed`: a fixed, documented hash (std's hasher may change
/// between Rust releases, and two nodes must agree).
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// mh: a Maglev lookup table of `size` entries (`size` must be prime for every
/// permutation to visit every slot).
pub fn maglev(members: &[Member<'_>], size: usize) -> Vec<u32> {
    let turns = turns(members, size);
    let mut active: Vec<usize> = (0..members.len()).filter(|&i| turns[i] > 0).collect();
    // Fill in name order, so the table depends on the pool, not on how it is listed.
    active.sort_by_key(|&i| members[i].name);
    if active.is_empty() || size == 0 {
        return Vec::new();
    }
    let m = size as u64;
    // Maglev §3.4: offset ∈ [0, M), skip ∈ [1, M), from two independent hashes.
    let perms: Vec<(u64, u64)> = active
        .iter()
        .map(|&i| {
            let name = members[i].name.as_bytes();
            let offset = fnv1a(0xcbf2_9ce4_8422_2325, name) % m;
            let skip = fnv1a(0x84222325_cbf29ce4, name) % (m - 1).max(1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; active.len()];
    let mut table = vec![u32::MAX; size];
    let mut filled = 0usize;
    while filled < size {
        for (slot, &member) in active.iter().enumerate() {
            for _ in 0..turns[member] {
                let (offset, skip) = perms[slot];
                // The permutation visits every slot (M prime), so this ends.
                let mut c = (offset + next[slot] * skip) % m;
                while table[c as usize] != u32::MAX {
                    next[slot] += 1;
                    c = (offset + next[slot] * skip) % m;
                }
                table[c as usize] = member as u32;
                next[slot] += 1;
                filled += 1;
                if filled == size {
                    return table;
                }
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: usize = 4093;

    fn members<'a>(names: &'a [String], weights: &[u32]) -> Vec<Member<'a>> {
        names
            .iter()
            .zip(weights)
            .map(|(name, &weight)| Member { name, weight })
            .collect()
    }

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("198.51.100.{i}:80")).collect()
    }

    fn shares(table: &[u32], n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for &i in table {
            counts[i as usize] += 1;
        }
        counts
    }

    #[test]
    fn wrr_sequence_follows_the_weights_and_interleaves() {
        let names = names(3);
        let seq = sequence(&members(&names, &[4, 3, 2]), true, M);
        assert_eq!(seq, vec![0, 0, 1, 0, 1, 2, 0, 1, 2]);
        // Common factors do not lengthen the period.
        let seq = sequence(&members(&names, &[40, 30, 20]), true, M);
        assert_eq!(seq.len(), 9);
    }

    #[test]
    fn rr_visits_each_member_once_and_skips_weight_zero() {
        let names = names(3);
        assert_eq!(sequence(&members(&names, &[5, 0, 1]), false, M), vec![0, 2]);
        assert_eq!(
            sequence(&members(&names, &[5, 0, 1]), true, M)
                .iter()
                .filter(|&&i| i == 1)
                .count(),
            0
        );
    }

    #[test]
    fn huge_weights_are_scaled_into_the_table() {
        let names = names(2);
        let seq = sequence(&members(&names, &[65_535, 1]), true, M);
        assert!(seq.len() <= M);
        assert!(seq.contains(&1), "a weight-1 member keeps a turn");
    }

    #[test]
    fn source_hash_buckets_split_by_weight() {
        let names = names(2);
        let table = source_hash(&members(&names, &[2, 1]), M);
        assert_eq!(table.len(), M);
        let s = shares(&table, 2);
        assert!((s[0] as f64 / s[1] as f64 - 2.0).abs() < 0.01, "{s:?}");
        assert!(source_hash(&members(&names, &[0, 0]), M).is_empty());
    }

    #[test]
    fn maglev_spreads_evenly_and_by_weight() {
        let names = names(3);
        let table = maglev(&members(&names, &[1, 1, 1]), M);
        assert!(table.iter().all(|&i| i < 3));
        for share in shares(&table, 3) {
            assert!(
                (share as f64 - M as f64 / 3.0).abs() < M as f64 * 0.02,
                "{share}"
            );
        }
        let table = maglev(&members(&names, &[2, 1, 1]), M);
        let s = shares(&table, 3);
        assert!((s[0] as f64 / M as f64 - 0.5).abs() < 0.02, "{s:?}");
    }

    #[test]
    fn maglev_moves_little_when_a_member_leaves() {
        let names = names(5);
        let before = maglev(&members(&names, &[1, 1, 1, 1, 1]), M);
        let after = maglev(&members(&names, &[1, 1, 0, 1, 1]), M);
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != 2 && b != a)
            .count();
        // Only member 2's slots must move; Maglev moves a few others too (paper §3.4).
        assert!(moved < M / 20, "{moved} slots of surviving members moved");
        assert!(after.iter().all(|&i| i != 2));
    }

    #[test]
    fn maglev_depends_on_names_not_positions() {
        let names = names(3);
        let forward = maglev(&members(&names, &[1, 1, 1]), M);
        let reversed_names: Vec<String> = names.iter().rev().cloned().collect();
        let reversed = maglev(&members(&reversed_names, &[1, 1, 1]), M);
        // Same servers listed in another order: each slot names the same server.
        let remapped: Vec<u32> = reversed.iter().map(|&i| 2 - i).collect();
        assert_eq!(forward, remapped);
    }

    /// Found by the `lb_table` fuzz target: weights [3604884499, 63, 3600040983, 0, 49]
    /// in 7 buckets gave member 4 none (the scaled turns summed to 8).
    #[test]
    fn scaling_leaves_no_weighted_member_out() {
        let names = names(5);
        let m = members(&names, &[3_604_884_499, 63, 3_600_040_983, 0, 49]);
        for table in [source_hash(&m, 7), maglev(&m, 7), sequence(&m, true, 7)] {
            for i in [0, 1, 2, 4] {
                assert!(table.contains(&i), "member {i} missing from {table:?}");
            }
            assert!(!table.contains(&3));
        }
    }

    /// The same through a configuration keepalived accepts: one real server of weight
    /// 65535 (the maximum) and 62 of weight 1 in the production table size. Before the
    /// fix, 58 of the weight-1 servers got no bucket in sh/mh and no turn in wrr.
    #[test]
    fn light_servers_beside_a_maximum_weight_one_still_get_flows() {
        let names = names(63);
        let mut weights = vec![1; 63];
        weights[0] = 65_535;
        let m = members(&names, &weights);
        for (what, table) in [
            ("sh", source_hash(&m, M)),
            ("mh", maglev(&m, M)),
            ("wrr", sequence(&m, true, M)),
        ] {
            let s = shares(&table, 63);
            assert!(s.iter().all(|&n| n > 0), "{what}: {s:?}");
            assert!(
                s[0] > M * 9 / 10,
                "{what}: the heavy server keeps its share: {s:?}"
            );
        }
    }

    /// Found by the `lb_table` fuzz target in the scaling above: more equal weights than
    /// table entries divided by zero.
    #[test]
    fn more_members_than_entries_take_one_each_in_turn() {
        let names = names(3);
        let m = members(&names, &[5, 5, 5]);
        assert_eq!(sequence(&m, true, 2), vec![0, 1]);
        assert_eq!(source_hash(&m, 2), vec![0, 1]);
        assert_eq!(maglev(&m, 2).len(), 2);
    }

    #[test]
    fn empty_pools_give_empty_tables() {
        let names = names(2);
        assert!(maglev(&members(&names, &[0, 0]), M).is_empty());
        assert!(sequence(&[], true, M).is_empty());
    }
}
