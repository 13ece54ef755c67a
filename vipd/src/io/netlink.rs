//! VIP add/remove, link facts (kind, MAC) and link watching over rtnetlink.
//!
//! Adding an address that is already there and removing one that is already gone both
//! succeed: the daemon may repeat either after a crash or a reload, and the kernel's
//! EEXIST / EADDRNOTAVAIL are not failures for it.
//!
//! IPv6 VIPs are added with `IFA_F_NODAD`, as keepalived does: the address is usable at
//! once instead of after duplicate address detection, and VRRP already decides who holds
//! it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::{StreamExt as _, TryStreamExt as _};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::sys::AsyncSocket as _;
use rtnetlink::{AddressMessageBuilder, Handle};
use tokio::sync::mpsc;

/// Errors talking to the kernel over rtnetlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened.
    #[error("opening an rtnetlink socket failed: {0}")]
    Connect(#[source] std::io::Error),
    /// The interface does not exist.
    #[error("interface {0:?} not found")]
    NoSuchInterface(String),
    /// The kernel refused a request.
    #[error("{what}: {source}")]
    Request {
        /// What was asked, for the log line.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A blocking request could not be sent, or its answer not read or decoded.
    #[error("{what}: {source}")]
    Io {
        /// What was asked, for the log line.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The interface has no Ethernet address (IFLA_ADDRESS is absent or not 6 bytes).
    #[error("interface {0:?} has no Ethernet MAC address")]
    NoMac(String),
}

/// One address on an interface, as `ip addr` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Its label (IPv4), e.g. `eth0:vip`.
    pub label: Option<String>,
    /// `IFA_F_*` flags (IPv6: tentative, DAD failed, ...).
    pub flags: u32,
}

impl InterfaceAddress {
    /// `IFA_F_DADFAILED`: another node on the link has this IPv6 address.
    pub const DAD_FAILED: u32 = 0x08;
    /// `IFA_F_TENTATIVE`: IPv6 duplicate address detection still runs.
    pub const TENTATIVE: u32 = 0x40;

    /// Whether this is a usable IPv6 link-local address (fe80::/10, DAD not failed).
    pub fn is_link_local_v6(&self) -> bool {
        matches!(self.address, IpAddr::V6(v6) if v6.is_unicast_link_local())
            && self.flags & Self::DAD_FAILED == 0
    }
}

/// A link went up or down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name, when the kernel included it.
    pub name: Option<String>,
    /// Administratively up and carrier present (IFF_UP and IFF_LOWER_UP).
    pub up: bool,
}

/// What the link watch reports ([`Netlink::watch_links`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A link went up or down.
    Link(LinkEvent),
    /// An IPv6 link-local address became usable (duplicate address detection over) on
    /// interface `ifindex`: IPv6 adverts and neighbour advertisements can leave from it.
    LinkLocalReady {
        /// Interface index.
        ifindex: u32,
    },
}

/// What vipd needs to know about a link besides its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkDetails {
    /// The interface name asked for.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// The kind of a virtual link (IFLA_INFO_KIND: `veth`, `bridge`, `vlan`, ...);
    /// `None` for a device driven by hardware.
    pub kind: Option<String>,
    /// The hardware address (IFLA_ADDRESS), when the link has one.
    pub address: Option<Vec<u8>>,
    /// The link a stacked device (macvlan, vlan) sits on (IFLA_LINK).
    pub parent: Option<u32>,
}

impl LinkDetails {
    /// The Ethernet MAC address, or an error naming the interface.
    pub fn mac(&self) -> Result<[u8; 6], NetlinkError> {
        self.address
            .as_deref()
            .and_then(|a| <[u8; 6]>::try_from(a).ok())
            .ok_or_else(|| NetlinkError::NoMac(self.name.clone()))
    }

    /// Whether the link is a veth.
    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }

    fn from_message(name: &str, link: &LinkMessage) -> LinkDetails {
        let mut details = LinkDetails {
            name: name.to_owned(),
            index: link.header.index,
            kind: None,
            address: None,
            parent: None,
        };
        for attribute in &link.attributes {
            match attribute {
                LinkAttribute::Address(address) => details.address = Some(address.clone()),
                LinkAttribute::Link(parent) => details.parent = Some(*parent),
                LinkAttribute::LinkInfo(infos) => {
                    details.kind = infos.iter().find_map(|info| match info {
                        LinkInfo::Kind(kind) => Some(kind.to_string()),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
        details
    }
}

/// Where the kernel routes an address ([`Netlink::route_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTo {
    /// Output interface.
    pub ifindex: u32,
    /// Next hop, when the address is not on a connected network.
    pub gateway: Option<IpAddr>,
}

/// One address's entry in the kernel's neighbour table ([`Netlink::neighbour_recheck`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighbourEntry {
    /// Confirmed by an answer lately (reachable) or set by hand (permanent).
    Confirmed([u8; 6]),
    /// Answered once, not re-confirmed since (stale, delay, probe).
    Unconfirmed([u8; 6]),
    /// Asked, and nobody answered (failed).
    Failed,
    /// No entry, or one still waiting for its first answer (incomplete).
    Unknown,
}

/// [`Netlink::link_details`] for code that cannot wait asynchronously: one RTM_GETLINK
/// on a blocking socket of its own, in the calling thread's network namespace.
pub fn link_details_blocking(name: &str) -> Result<LinkDetails, NetlinkError> {
    use rtnetlink::packet_core::{NLM_F_REQUEST, NetlinkMessage};
    use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

    let io_err = |source| NetlinkError::Io {
        what: format!("looking up interface {name}"),
        source,
    };
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Connect)?;
    socket.bind_auto().map_err(NetlinkError::Connect)?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(NetlinkError::Connect)?;
    let mut request =
        NetlinkMessage::from(RouteNetlinkMessage::GetLink(link_by_name_request(name)));
    request.header.flags = NLM_F_REQUEST;
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0).map_err(io_err)?;
    loop {
        let (reply, _) = socket.recv_from_full().map_err(io_err)?;
        let mut rest = reply.as_slice();
        while !rest.is_empty() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                .map_err(|e| io_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    return Ok(LinkDetails::from_message(name, &link));
                }
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(lookup_error(name, rtnetlink::Error::NetlinkError(error)));
                }
                _ => {}
            }
            // The header's length covers the message and was checked by deserialize.
            let length = (message.header.length as usize).max(1);
            rest = rest.get(length.next_multiple_of(4)..).unwrap_or_default();
        }
    }
}

/// A RTM_GETLINK body that asks for the link called `name`.
fn link_by_name_request(name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_owned()));
    message
}

/// The error for a failed lookup of interface `name`; ENODEV is the kernel's "no such
/// device".
fn lookup_error(name: &str, error: rtnetlink::Error) -> NetlinkError {
    if errno(&error) == Some(libc::ENODEV) {
        NetlinkError::NoSuchInterface(name.to_owned())
    } else {
        NetlinkError::Request {
            what: format!("looking up interface {name}"),
            source: error,
        }
    }
}

/// A handle for rtnetlink requests; cheap to clone.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: Handle,
}

fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Netlink {
    /// Opens a request socket (its connection runs as a tokio task).
    pub fn connect() -> Result<Self, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// The index of the interface called `name`.
    pub async fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        Ok(self.link_by_name(name).await?.header.index)
    }

    async fn link_by_name(&self, name: &str) -> Result<LinkMessage, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(NetlinkError::NoSuchInterface(name.to_owned())),
            Err(e) => Err(lookup_error(name, e)),
        }
    }

    /// The index, kind and hardware address of the interface called `name`.
    pub async fn link_details(&self, name: &str) -> Result<LinkDetails, NetlinkError> {
        Ok(LinkDetails::from_message(
            name,
            &self.link_by_name(name).await?,
        ))
    }

    /// The Ethernet MAC address of the interface called `name`.
    pub async fn link_mac(&self, name: &str) -> Result<[u8; 6], NetlinkError> {
        self.link_details(name).await?.mac()
    }

    /// Creates a macvlan called `name` on link `parent` in bridge mode with address
    /// `mac`, down; returns its index. Bridge mode, as FRR's: in private mode (what
    /// keepalived uses) the kernel hands a multicast frame whose source is a local
    /// macvlan's MAC to that macvlan only, so the parent would never see the other
    /// router's adverts, which come from the same virtual MAC.
    pub async fn add_macvlan(
        &self,
        name: &str,
        parent: u32,
        mac: [u8; 6],
    ) -> Result<u32, NetlinkError> {
        use rtnetlink::LinkMacVlan;
        use rtnetlink::packet_route::link::MacVlanMode;
        let message = LinkMacVlan::new(name, parent, MacVlanMode::Bridge)
            .address(mac.to_vec())
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                what: format!("creating macvlan {name}"),
                source,
            })?;
        self.link_index(name).await
    }

    /// Sets link `index` administratively up.
    pub async fn set_link_up(&self, index: u32) -> Result<(), NetlinkError> {
        use rtnetlink::LinkUnspec;
        let message = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                what: format!("setting link {index} up"),
                source,
            })
    }

    /// Deletes link `index`; succeeds if it is already gone.
    pub async fn del_link(&self, index: u32) -> Result<(), NetlinkError> {
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                what: format!("deleting link {index}"),
                source,
            }),
        }
    }

    /// Whether the interface is up with carrier (IFF_UP and IFF_LOWER_UP).
    pub async fn link_is_up(&self, name: &str) -> Result<bool, NetlinkError> {
        Ok(link_up(&self.link_by_name(name).await?))
    }

    /// Adds `address/prefix_len` (with an optional IPv4 label; IPv6 without duplicate
    /// address detection) to interface `ifindex`; succeeds if it is already there.
    pub async fn add_address(
        &self,
        ifindex: u32,
        address: IpAddr,
        prefix_len: u8,
        label: Option<&str>,
    ) -> Result<(), NetlinkError> {
        let mut request = self.handle.address().add(ifindex, address, prefix_len);
        if let (Some(label), IpAddr::V4(_)) = (label, address) {
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::Label(label.to_owned()));
        }
        if address.is_ipv6() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                what: format!("adding {address}/{prefix_len} to ifindex {ifindex}"),
                source,
            }),
        }
    }

    /// Removes `address/prefix_len` from interface `ifindex`; succeeds if it is not there.
    pub async fn del_address(
        &self,
        ifindex: u32,
        address: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let message = address_message(ifindex, address, prefix_len);
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL | libc::ENOENT)) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                what: format!("removing {address}/{prefix_len} from ifindex {ifindex}"),
                source,
            }),
        }
    }

    /// Every address on interface `ifindex`.
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<InterfaceAddress>, NetlinkError> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
        let mut out = Vec::new();
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => out.extend(interface_address(&msg)),
                Ok(None) => return Ok(out),
                Err(source) => {
                    return Err(NetlinkError::Request {
                        what: format!("listing addresses of ifindex {ifindex}"),
                        source,
                    });
                }
            }
        }
    }

    /// The link-layer address that answers for `address` on interface `ifindex` now:
    /// what the kernel knew is forgotten first (a stale entry can name a router that no
    /// longer, or not yet, holds the address), the kernel is asked to resolve it afresh
    /// (`NTF_USE`, as `ip neigh replace .. use`: an ARP request or a neighbour
    /// solicitation, asked again every 5 ms at first), and the table is read every
    /// millisecond until an answer came or `timeout`. `None` if nobody answered in time.
    pub async fn resolve_neighbour(
        &self,
        ifindex: u32,
        address: IpAddr,
        timeout: std::time::Duration,
    ) -> Result<Option<[u8; 6]>, NetlinkError> {
        let start = tokio::time::Instant::now();
        let end = start + timeout;
        let mut next_ask = start;
        loop {
            let now = tokio::time::Instant::now();
            if now >= next_ask {
                // Forgotten and asked again, not left to the kernel's retransmission
                // (1 s): a successor still adding the address does not answer the first
                // request, and the former master keeps answering for it (XDP lease and
                // all) until this returns. Every 5 ms for the first 100 ms, then every
                // 100 ms.
                self.forget_neighbour(ifindex, address).await?;
                let request = self
                    .handle
                    .neighbours()
                    .add(ifindex, address)
                    .state(NeighbourState::None)
                    .flags(NeighbourFlags::Use)
                    .replace();
                request
                    .execute()
                    .await
                    .map_err(|source| NetlinkError::Request {
                        what: format!("resolving {address} on ifindex {ifindex}"),
                        source,
                    })?;
                let early = now.duration_since(start) < std::time::Duration::from_millis(100);
                next_ask = now
                    + if early {
                        std::time::Duration::from_millis(5)
                    } else {
                        std::time::Duration::from_millis(100)
                    };
            }
            // Looked at every millisecond: a successor usually answers within
            // milliseconds of its first advert.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            if let Some(mac) = self.neighbour(ifindex, address).await? {
                return Ok(Some(mac));
            }
            if tokio::time::Instant::now() >= end {
                return Ok(None);
            }
        }
    }

    /// The kernel's route to `address` (`ip route get`): the output interface, and the
    /// gateway when the address is not on a connected network.
    pub async fn route_to(&self, address: IpAddr) -> Result<Option<RouteTo>, NetlinkError> {
        use futures_util::StreamExt as _;
        use rtnetlink::RouteMessageBuilder;
        use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
        let message = match address {
            IpAddr::V4(v4) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(v4, 32)
                .build(),
            IpAddr::V6(v6) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(v6, 128)
                .build(),
        };
        let mut replies = self.handle.route().get(message).execute();
        let Some(reply) = replies.next().await else {
            return Ok(None);
        };
        let route = match reply {
            Ok(route) => route,
            // No route at all (ENETUNREACH and friends): nothing to forward through.
            Err(e) if errno(&e).is_some() => return Ok(None),
            Err(source) => {
                return Err(NetlinkError::Request {
                    what: format!("looking up the route to {address}"),
                    source,
                });
            }
        };
        let mut out = RouteTo {
            ifindex: 0,
            gateway: None,
        };
        for attribute in &route.attributes {
            match attribute {
                RouteAttribute::Oif(index) => out.ifindex = *index,
                RouteAttribute::Gateway(RouteAddress::Inet(v4)) => {
                    out.gateway = Some(IpAddr::V4(*v4))
                }
                RouteAttribute::Gateway(RouteAddress::Inet6(v6)) => {
                    out.gateway = Some(IpAddr::V6(*v6))
                }
                _ => {}
            }
        }
        Ok((out.ifindex != 0).then_some(out))
    }

    /// What the neighbour table says about `address` on `ifindex`, and, unless the
    /// entry is confirmed, asks the kernel to (re-)check it (`NTF_USE`): an entry
    /// nobody answered yet is resolved, a stale one goes through delay and probe to
    /// reachable again (or to failed, if its owner is gone or changed its address).
    /// Unlike [`Self::resolve_neighbour`] it forgets nothing and never waits.
    ///
    /// For the load balancer's real servers: XDP sends them frames the kernel never
    /// sees, so their entries go stale after `base_reachable_time` (15 to 45 s) and
    /// stay so until something asks. A stale address is still the right one until a
    /// probe proves otherwise (the kernel itself sends on it meanwhile).
    pub async fn neighbour_recheck(
        &self,
        ifindex: u32,
        address: IpAddr,
    ) -> Result<NeighbourEntry, NetlinkError> {
        let entry = self.neighbour_entry(ifindex, address).await?;
        if matches!(entry, NeighbourEntry::Confirmed(_)) {
            return Ok(entry);
        }
        self.handle
            .neighbours()
            .add(ifindex, address)
            .state(NeighbourState::None)
            .flags(NeighbourFlags::Use)
            .replace()
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                what: format!("resolving {address} on ifindex {ifindex}"),
                source,
            })?;
        Ok(entry)
    }

    /// Removes the kernel's neighbour entry for `address` on `ifindex`; none is fine.
    async fn forget_neighbour(&self, ifindex: u32, address: IpAddr) -> Result<(), NetlinkError> {
        let mut message = NeighbourMessage::default();
        message.header.ifindex = ifindex;
        let destination = match address {
            IpAddr::V4(v4) => {
                message.header.family = AddressFamily::Inet;
                NeighbourAddress::Inet(v4)
            }
            IpAddr::V6(v6) => {
                message.header.family = AddressFamily::Inet6;
                NeighbourAddress::Inet6(v6)
            }
        };
        message
            .attributes
            .push(NeighbourAttribute::Destination(destination));
        match self.handle.neighbours().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ENOENT)) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                what: format!("forgetting the neighbour entry of {address} on ifindex {ifindex}"),
                source,
            }),
        }
    }

    /// The neighbour table's answered link-layer address for `address` on `ifindex`:
    /// only an entry confirmed by an answer (reachable) or set by hand (permanent)
    /// counts, never one the kernel still has to re-check.
    async fn neighbour(
        &self,
        ifindex: u32,
        address: IpAddr,
    ) -> Result<Option<[u8; 6]>, NetlinkError> {
        Ok(match self.neighbour_entry(ifindex, address).await? {
            NeighbourEntry::Confirmed(mac) => Some(mac),
            _ => None,
        })
    }

    /// The neighbour table's entry for `address` on `ifindex`.
    async fn neighbour_entry(
        &self,
        ifindex: u32,
        address: IpAddr,
    ) -> Result<NeighbourEntry, NetlinkError> {
        let family = match address {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        let mut entries = self
            .handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute();
        loop {
            let entry = match entries.try_next().await {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(NeighbourEntry::Unknown),
                Err(source) => {
                    return Err(NetlinkError::Request {
                        what: format!("reading the neighbour table for {address}"),
                        source,
                    });
                }
            };
            if entry.header.ifindex != ifindex {
                continue;
            }
            let mut destination = None;
            let mut mac = None;
            for attribute in &entry.attributes {
                match attribute {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        destination = Some(IpAddr::V4(*v4));
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        destination = Some(IpAddr::V6(*v6));
                    }
                    NeighbourAttribute::LinkLayerAddress(bytes) => {
                        mac = <[u8; 6]>::try_from(bytes.as_slice()).ok();
                    }
                    _ => {}
                }
            }
            if destination != Some(address) {
                continue;
            }
            // Incomplete and failed entries have no (or no trusted) address.
            return Ok(match (entry.header.state, mac) {
                (NeighbourState::Failed, _) => NeighbourEntry::Failed,
                (NeighbourState::Reachable | NeighbourState::Permanent, Some(mac)) => {
                    NeighbourEntry::Confirmed(mac)
                }
                (
                    NeighbourState::Stale | NeighbourState::Delay | NeighbourState::Probe,
                    Some(mac),
                ) => NeighbourEntry::Unconfirmed(mac),
                _ => NeighbourEntry::Unknown,
            });
        }
    }

    /// Subscribes to link changes and to IPv6 link-local addresses becoming usable;
    /// events arrive on the returned channel.
    pub fn watch_links() -> Result<mpsc::UnboundedReceiver<NetEvent>, NetlinkError> {
        let (mut connection, _, mut messages) =
            rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        let groups = rtnetlink::constants::RTMGRP_LINK | rtnetlink::constants::RTMGRP_IPV6_IFADDR;
        connection
            .socket_mut()
            .socket_mut()
            .bind(&rtnetlink::sys::SocketAddr::new(0, groups))
            .map_err(NetlinkError::Connect)?;
        tokio::spawn(connection);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some((message, _)) = messages.next().await {
                let event = match message.payload {
                    NetlinkPayload::InnerMessage(
                        RouteNetlinkMessage::NewLink(link) | RouteNetlinkMessage::DelLink(link),
                    ) => NetEvent::Link(LinkEvent {
                        ifindex: link.header.index,
                        name: link_name(&link),
                        up: link_up(&link),
                    }),
                    // The kernel announces a new link-local address while tentative,
                    // then again once duplicate address detection is over.
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(msg)) => {
                        match interface_address(&msg) {
                            Some(a)
                                if a.is_link_local_v6()
                                    && a.flags & InterfaceAddress::TENTATIVE == 0 =>
                            {
                                NetEvent::LinkLocalReady {
                                    ifindex: msg.header.index,
                                }
                            }
                            _ => continue,
                        }
                    }
                    _ => continue,
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

fn address_message(ifindex: u32, address: IpAddr, prefix_len: u8) -> AddressMessage {
    match address {
        IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(ifindex)
            .address(v4, prefix_len)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(ifindex)
            .address(v6, prefix_len)
            .build(),
    }
}

fn interface_address(msg: &AddressMessage) -> Option<InterfaceAddress> {
    // IPv4 carries the local address in IFA_LOCAL (IFA_ADDRESS is the peer on p2p links);
    // IPv6 has only IFA_ADDRESS.
    let mut local = None;
    let mut any = None;
    let mut label = None;
    // IFA_FLAGS (32 bits) supersedes the header's 8-bit field when present.
    let mut flags = u32::from(msg.header.flags.bits());
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => any = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    Some(InterfaceAddress {
        address: local.or(any)?,
        prefix_len: msg.header.prefix_len,
        label,
        flags,
    })
}

fn link_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up) && link.header.flags.contains(LinkFlags::LowerUp)
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_route::link::InfoKind;

    use super::*;

    #[test]
    fn details_read_kind_and_address() {
        let mut link = LinkMessage::default();
        link.header.index = 7;
        link.attributes = vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Address(vec![0x02, 0, 0x5e, 0, 1, 2]),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let details = LinkDetails::from_message("veth0", &link);
        assert_eq!(details.index, 7);
        assert!(details.is_veth());
        assert_eq!(details.mac().expect("mac"), [0x02, 0, 0x5e, 0, 1, 2]);

        link.attributes = vec![
            LinkAttribute::Address(vec![192, 0, 2, 1]),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::IpIp)]),
        ];
        let tunnel = LinkDetails::from_message("tun0", &link);
        assert_eq!(tunnel.kind.as_deref(), Some("ipip"));
        assert!(!tunnel.is_veth());
        // A 4-byte link address is no MAC; the error names the interface.
        match tunnel.mac() {
            Err(e @ NetlinkError::NoMac(_)) => assert!(e.to_string().contains("tun0"), "{e}"),
            other => panic!("expected NoMac, got {other:?}"),
        }
    }

    #[test]
    fn blocking_lookup_asks_the_kernel() {
        let lo = link_details_blocking("lo").expect("lo exists in every network namespace");
        assert_eq!(lo.index, crate::io::bpf::if_index("lo").expect("lo"));
        assert_eq!(lo.kind, None);
        assert_eq!(lo.mac().expect("lo has an all-zero MAC"), [0; 6]);
        assert!(!lo.is_veth());

        match link_details_blocking("vipd-no-such0") {
            Err(NetlinkError::NoSuchInterface(name)) => assert_eq!(name, "vipd-no-such0"),
            other => panic!("expected NoSuchInterface, got {other:?}"),
        }
    }
}
