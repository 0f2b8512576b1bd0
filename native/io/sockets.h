// Thin wrappers over the socket calls the io module makes. Every fd is
// non-blocking and close-on-exec; failures carry the errno and what was attempted.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ctdb::io {

struct SocketResult {
  int fd = -1;
  int err = 0;       // errno when fd < 0
  std::string what;  // operation and path/address, for the JS error message
};

struct IpEndpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// Numeric IPv4 or IPv6 (scope ids allowed); nullopt when `address` is not one.
std::optional<IpEndpoint> ParseIpEndpoint(const std::string& address, uint16_t port);
// "1.2.3.4" / "fe80::1" and the port, from a socket address.
std::string FormatIp(const sockaddr_storage& addr, uint16_t* port);
std::string DescribeEndpoint(const IpEndpoint& endpoint);

SocketResult ListenUnix(const std::string& path, unsigned mode);
SocketResult ListenTcp(const IpEndpoint& local);

struct ConnectStart {
  SocketResult socket;  // failure here is a caller error (bad local address, no fds)
  int status = 0;       // 0 connected, EINPROGRESS, or the connect() errno
};
ConnectStart StartConnect(const IpEndpoint* local, const IpEndpoint& remote);

// The port a listening socket got (useful after binding port 0).
int LocalPort(int fd);
// Pending SO_ERROR of a socket whose non-blocking connect finished.
int TakeSocketError(int fd);
void TuneTcp(int fd);

}  // namespace ctdb::io
