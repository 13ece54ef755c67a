//! L3 mode's announcement devices: two TAP interfaces owned by this process, whose host
//! addresses FRR announces over BGP (docs/l3.md).
//!
//! An announced address is a /32 (/128) on [`PRIMARY_DEVICE`] or [`STANDBY_DEVICE`].
//! zebra turns each into a connected route and bgpd redistributes those of the two
//! devices through a route-map (`redistribute connected route-map vipd`, `match interface
//! vipd-l3`), which attaches the standby path's MED, prepending and communities. The
//! devices are not persistent: when vipd exits, however it exits, the kernel closes the
//! file descriptors, deletes the devices with their addresses, and zebra withdraws the
//! routes. A restarted zebra reads the addresses that exist, so it cannot keep a stale
//! one. The address is also local to the node, so services bound to it answer.

use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use crate::io::netlink::{Netlink, NetlinkError};
use crate::proto::l3::RoutePath;
pub use crate::proto::l3::{PRIMARY_DEVICE, STANDBY_DEVICE};

/// Why the announcement devices could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum L3Error {
    /// /dev/net/tun could not be opened or TUNSETIFF failed.
    #[error(
        "creating TAP device {device}: {source} (needs CAP_NET_ADMIN and /dev/net/tun; \
         a second vipd on this host holds it already if the error is EBUSY)"
    )]
    Tap {
        /// The device name.
        device: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An rtnetlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// One open TAP device: the device lives as long as `file`.
#[derive(Debug)]
struct Tap {
    // Never read or written: holding it open is what keeps the device (and its routes).
    _file: File,
    ifindex: u32,
}

/// `struct ifreq` as TUNSETIFF reads it: a name and the flags, padded to 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl Tap {
    async fn open(device: &'static str, netlink: &Netlink) -> Result<Tap, L3Error> {
        let tap_error = |source| L3Error::Tap { device, source };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(tap_error)?;
        let mut request = IfReq {
            name: [0; libc::IFNAMSIZ],
            // A TAP rather than a TUN device: zebra ignores a /32 on a point-to-point
            // interface without a peer address ("needs a peer address"), so a TUN's
            // addresses would never become routes.
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        request.name[..device.len()].copy_from_slice(device.as_bytes());
        // SAFETY: TUNSETIFF reads a `struct ifreq` (40 bytes, `IfReq` has that layout)
        // and writes the chosen name back into it; `request` outlives the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
        if rc != 0 {
            return Err(tap_error(std::io::Error::last_os_error()));
        }
        let ifindex = netlink.link_index(device).await?;
        netlink.set_link_up(ifindex).await?;
        Ok(Tap {
            _file: file,
            ifindex,
        })
    }
}

/// The two announcement devices.
#[derive(Debug)]
pub struct Announcer {
    netlink: Netlink,
    primary: Tap,
    standby: Tap,
}

impl Announcer {
    /// Creates both devices and brings them up.
    pub async fn open(netlink: Netlink) -> Result<Announcer, L3Error> {
        let primary = Tap::open(PRIMARY_DEVICE, &netlink).await?;
        let standby = Tap::open(STANDBY_DEVICE, &netlink).await?;
        Ok(Announcer {
            netlink,
            primary,
            standby,
        })
    }

    fn ifindex(&self, path: RoutePath) -> u32 {
        match path {
            RoutePath::Primary => self.primary.ifindex,
            RoutePath::Standby => self.standby.ifindex,
        }
    }

    /// Announces `address` as `path`: adds it as a host address to that path's device.
    pub async fn announce(&self, address: IpAddr, path: RoutePath) -> Result<(), L3Error> {
        let prefix = host_prefix(address);
        Ok(self
            .netlink
            .add_address(self.ifindex(path), address, prefix, None)
            .await?)
    }

    /// Withdraws `address` from `path`.
    pub async fn withdraw(&self, address: IpAddr, path: RoutePath) -> Result<(), L3Error> {
        let prefix = host_prefix(address);
        Ok(self
            .netlink
            .del_address(self.ifindex(path), address, prefix)
            .await?)
    }
}

fn host_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}
