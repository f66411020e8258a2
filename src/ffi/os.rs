//! The OS facts registrar's defaults need: host name and interface addresses.
//! Calls out to libc, hence in the unsafe-holding ffi module; exposed as safe functions.

use std::ffi::CStr;
use std::net::Ipv4Addr;

/// The OS host name (gethostname), or None if it cannot be read.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its full length; gethostname NUL-terminates within it on success
    // (the last byte stays 0 even if the name is truncated).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let name = CStr::from_bytes_until_nul(&buf)
        .ok()?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    (!name.is_empty()).then_some(name)
}

/// The first non-loopback IPv4 address of an interface that is up (getifaddrs order).
pub fn first_ipv4() -> Option<String> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: cursor walks the list getifaddrs returned, which stays valid until freeifaddrs.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        let flags = entry.ifa_flags as libc::c_int;
        if entry.ifa_addr.is_null() || flags & libc::IFF_UP == 0 || flags & libc::IFF_LOOPBACK != 0
        {
            continue;
        }
        // SAFETY: ifa_addr is non-null; sa_family tells us it is a sockaddr_in.
        if unsafe { (*entry.ifa_addr).sa_family } as libc::c_int != libc::AF_INET {
            continue;
        }
        let addr = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
        let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        if !ip.is_loopback() && !ip.is_unspecified() {
            found = Some(ip.to_string());
            break;
        }
    }
    // SAFETY: head came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    found
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
