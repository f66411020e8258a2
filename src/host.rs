//! The OS facts registrar's defaults need: the host name and an interface address.
//! Safe wrappers (nix) over gethostname and getifaddrs: the core needs no `unsafe` for them.

use std::net::Ipv4Addr;

use nix::net::if_::InterfaceFlags;

/// The OS host name (gethostname), or None if it cannot be read.
pub fn hostname() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?;
    let name = name.to_str()?.trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// The first non-loopback IPv4 address of an interface that is up (getifaddrs order).
pub fn first_ipv4() -> Option<String> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|entry| {
            entry.flags.contains(InterfaceFlags::IFF_UP)
                && !entry.flags.contains(InterfaceFlags::IFF_LOOPBACK)
        })
        .filter_map(|entry| {
            let ip: Ipv4Addr = entry.address?.as_sockaddr_in()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
        .map(|ip| ip.to_string())
        .next()
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_facts_are_readable() {
        assert!(super::hostname().is_some());
        if let Some(ip) = super::first_ipv4() {
            assert!(!ip.starts_with("127."));
        }
    }
}
