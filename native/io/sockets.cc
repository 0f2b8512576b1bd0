#include "io/sockets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ctdb::io {
namespace {

// The kernel clamps this to net.core.somaxconn; 5000 clients may connect at once.
constexpr int kListenBacklog = 16384;

SocketResult Failure(int fd, std::string what) {
  const int err = errno;
  if (fd >= 0) close(fd);
  return SocketResult{-1, err, std::move(what)};
}

bool FillUnixAddress(const std::string& path, sockaddr_un* addr) {
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

// A socket file left by a daemon that died can be removed; one a live daemon still
// accepts on must not be stolen, and a non-socket file is never ours to delete.
int RemoveStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISSOCK(st.st_mode)) return EEXIST;
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return errno;
  const bool live = connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 || errno == EAGAIN;
  close(probe);
  if (live) return EADDRINUSE;
  return unlink(path.c_str()) == 0 || errno == ENOENT ? 0 : errno;
}

}  // namespace

std::optional<IpEndpoint> ParseIpEndpoint(const std::string& address, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (address.empty() || getaddrinfo(address.c_str(), service.c_str(), &hints, &found) != 0) return std::nullopt;
  IpEndpoint endpoint;
  std::memcpy(&endpoint.addr, found->ai_addr, found->ai_addrlen);
  endpoint.len = found->ai_addrlen;
  freeaddrinfo(found);
  return endpoint;
}

std::string FormatIp(const sockaddr_storage& addr, uint16_t* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
    *port = ntohs(in.sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
    *port = ntohs(in6.sin6_port);
  } else {
    *port = 0;
  }
  return text;
}

std::string DescribeEndpoint(const IpEndpoint& endpoint) {
  uint16_t port = 0;
  const std::string ip = FormatIp(endpoint.addr, &port);
  return endpoint.addr.ss_family == AF_INET6 ? "[" + ip + "]:" + std::to_string(port) : ip + ":" + std::to_string(port);
}

SocketResult ListenUnix(const std::string& path, unsigned mode) {
  const std::string what = "listen on unix socket " + path;
  sockaddr_un addr;
  if (!FillUnixAddress(path, &addr)) {
    errno = ENAMETOOLONG;
    return Failure(-1, what);
  }
  if (const int err = RemoveStaleSocket(path, addr); err != 0) {
    errno = err;
    return Failure(-1, what);
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failure(fd, what);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return Failure(fd, "bind unix socket " + path);
  if (chmod(path.c_str(), mode) != 0) return Failure(fd, "chmod unix socket " + path);
  if (listen(fd, kListenBacklog) != 0) return Failure(fd, what);
  return SocketResult{fd, 0, what};
}

SocketResult ListenTcp(const IpEndpoint& local) {
  const std::string where = DescribeEndpoint(local);
  const int fd = socket(local.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failure(fd, "socket for " + where);
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  // An IPv6 node address must not also capture IPv4 peers meant for another listener.
  if (local.addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&local.addr), local.len) != 0) return Failure(fd, "bind " + where);
  if (listen(fd, kListenBacklog) != 0) return Failure(fd, "listen on " + where);
  return SocketResult{fd, 0, where};
}

ConnectStart StartConnect(const IpEndpoint* local, const IpEndpoint& remote) {
  const std::string where = DescribeEndpoint(remote);
  ConnectStart start;
  const int fd = socket(remote.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    start.socket = Failure(fd, "socket for " + where);
    return start;
  }
  // Peers identify an incoming daemon connection only by its source address.
  if (local != nullptr && bind(fd, reinterpret_cast<const sockaddr*>(&local->addr), local->len) != 0) {
    start.socket = Failure(fd, "bind " + DescribeEndpoint(*local) + " to connect to " + where);
    return start;
  }
  TuneTcp(fd);
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  start.socket = SocketResult{fd, 0, "connect to " + where};
  start.status = connect(fd, reinterpret_cast<const sockaddr*>(&remote.addr), remote.len) == 0 ? 0 : errno;
  return start;
}

int LocalPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  uint16_t port = 0;
  FormatIp(addr, &port);
  return port;
}

int TakeSocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

void TuneTcp(int fd) {
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

}  // namespace ctdb::io
