#include "io/io_context.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ctdb::io {
namespace {

// Per readiness event and connection: beyond this, level-triggered polling returns
// to the connection after the others had their turn.
constexpr size_t kReadBudget = 1u << 20;
// Packets JS has not been given yet; reading stops for this iteration above it.
constexpr size_t kMaxPendingBytes = 4u << 20;
constexpr uint64_t kAcceptRetryMs = 100;
constexpr size_t kKeptPartialCapacity = 1024;

template <typename Handle>
uv_handle_t* AsHandle(Handle* handle) {
  return reinterpret_cast<uv_handle_t*>(handle);
}

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace

void IoContext::Start(Napi::Object callbacks, const IoOptions& options) {
  options_ = options;
  receiver_ = Napi::Persistent(callbacks);
  on_packets_ = Napi::Persistent(callbacks.Get("packets").As<Napi::Function>());
  on_accepted_ = Napi::Persistent(callbacks.Get("accepted").As<Napi::Function>());
  on_connected_ = Napi::Persistent(callbacks.Get("connected").As<Napi::Function>());
  on_closed_ = Napi::Persistent(callbacks.Get("closed").As<Napi::Function>());
  async_context_.emplace(env_, "ctdb.io");
  napi_get_uv_event_loop(env_, &loop_);
  uv_check_init(loop_, &check_);
  uv_idle_init(loop_, &idle_);
  check_.data = idle_.data = this;
  open_handles_ += 2;
  uv_check_start(&check_, OnCheck);
  // Only sockets keep the process alive; these two are bookkeeping.
  uv_unref(AsHandle(&check_));
  uv_unref(AsHandle(&idle_));
  started_ = true;
}

// ---- listeners -------------------------------------------------------------

SocketResult IoContext::ListenUnix(const std::string& path, unsigned mode, uint32_t* id) {
  SocketResult result = io::ListenUnix(path, mode);
  if (result.fd >= 0) *id = AddListener(result.fd, FramingMode::kClient, true);
  return result;
}

SocketResult IoContext::ListenTcp(const IpEndpoint& local, uint32_t* id) {
  SocketResult result = io::ListenTcp(local);
  if (result.fd >= 0) *id = AddListener(result.fd, FramingMode::kPeer, false);
  return result;
}

uint32_t IoContext::AddListener(int fd, FramingMode mode, bool is_unix) {
  auto* listener = new Listener;
  listener->ctx = this;
  listener->fd = fd;
  listener->mode = mode;
  listener->is_unix = is_unix;
  listener->id = listeners_.Insert(listener);
  uv_poll_init(loop_, &listener->poll, fd);
  uv_timer_init(loop_, &listener->retry);
  listener->poll.data = listener->retry.data = listener;
  listener->open_handles = 2;
  open_handles_ += 2;
  uv_poll_start(&listener->poll, UV_READABLE, OnListenerPoll);
  return listener->id;
}

bool IoContext::CloseListener(uint32_t id) {
  Listener** found = listeners_.Find(id);
  if (found == nullptr) return false;
  Listener* listener = *found;
  listeners_.Erase(id);
  ReleaseListener(listener);
  return true;
}

int IoContext::ListenerPort(uint32_t id) {
  Listener** found = listeners_.Find(id);
  return found == nullptr || (*found)->is_unix ? -1 : LocalPort((*found)->fd);
}

void IoContext::ReleaseListener(Listener* listener) {
  uv_poll_stop(&listener->poll);
  close(listener->fd);
  listener->fd = -1;
  const auto closed = [](uv_handle_t* handle) {
    auto* owner = static_cast<Listener*>(handle->data);
    IoContext* ctx = owner->ctx;
    if (--owner->open_handles == 0) delete owner;
    ctx->HandleClosed();
  };
  uv_close(AsHandle(&listener->poll), closed);
  uv_close(AsHandle(&listener->retry), closed);
}

void IoContext::OnListenerPoll(uv_poll_t* poll, int, int) {
  auto* listener = static_cast<Listener*>(poll->data);
  listener->ctx->AcceptPending(listener);
}

void IoContext::OnListenerRetry(uv_timer_t* timer) {
  auto* listener = static_cast<Listener*>(timer->data);
  uv_poll_start(&listener->poll, UV_READABLE, OnListenerPoll);
}

void IoContext::AcceptPending(Listener* listener) {
  for (;;) {
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof(addr);
    const int fd = accept4(listener->fd, reinterpret_cast<sockaddr*>(&addr), &addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (WouldBlock(errno)) return;
      // Out of fds or memory: the connection stays in the backlog and a
      // level-triggered listener would spin on it, so look again a bit later.
      uv_poll_stop(&listener->poll);
      uv_timer_start(&listener->retry, OnListenerRetry, kAcceptRetryMs, 0);
      return;
    }
    Event event{EventKind::kAccepted, 0, listener->id};
    event.peer.is_unix = listener->is_unix;
    if (listener->is_unix) {
      ucred cred{};
      socklen_t cred_len = sizeof(cred);
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0) {
        event.peer.pid = cred.pid;
        event.peer.uid = cred.uid;
        event.peer.gid = cred.gid;
      }
    } else {
      TuneTcp(fd);
      event.peer.address = FormatIp(addr, &event.peer.port);
    }
    event.conn = AddConnection(fd, listener->mode, false);
    if (event.conn == 0) continue;
    ++stats_.accepts;
    Queue(std::move(event));
  }
}

// ---- connections -----------------------------------------------------------

SocketResult IoContext::ConnectTcp(const IpEndpoint* local, const IpEndpoint& remote, uint32_t* id) {
  ConnectStart start = StartConnect(local, remote);
  if (start.socket.fd < 0) return start.socket;
  const bool pending = start.status == EINPROGRESS;
  *id = AddConnection(start.socket.fd, FramingMode::kPeer, pending);
  if (*id == 0) {
    start.socket.fd = -1;
    start.socket.err = ENOMEM;
    return start.socket;
  }
  Connection* conn = connections_.Find(*id)->conn;
  conn->remote = start.socket.what;
  if (start.status == 0) {
    ++stats_.connects;
    Queue(Event{EventKind::kConnected, *id});
  } else if (!pending) {
    // Refused before it started: still reported through connected() like a late failure.
    EndWithEvent(conn, Event{EventKind::kConnectFailed, *id, 0, {}, start.status, conn->remote});
  }
  return start.socket;
}

uint32_t IoContext::AddConnection(int fd, FramingMode mode, bool connecting) {
  auto* conn = new Connection;
  if (uv_poll_init(loop_, &conn->poll, fd) != 0) {
    close(fd);
    delete conn;
    return 0;
  }
  ++open_handles_;
  conn->ctx = this;
  conn->fd = fd;
  conn->mode = mode;
  conn->connecting = connecting;
  conn->poll.data = conn;
  conn->id = connections_.Insert(ConnectionSlot{conn});
  live_.insert(conn);
  UpdateInterest(conn);
  return conn->id;
}

void IoContext::FinishConnect(Connection* conn) {
  const int err = TakeSocketError(conn->fd);
  if (err != 0) {
    EndWithEvent(conn, Event{EventKind::kConnectFailed, conn->id, 0, {}, err, conn->remote});
    return;
  }
  conn->connecting = false;
  ++stats_.connects;
  if (conn->id != 0) Queue(Event{EventKind::kConnected, conn->id});
  if (!conn->queue.empty()) {
    WritePending(conn);
  } else {
    UpdateInterest(conn);
  }
}

void IoContext::UpdateInterest(Connection* conn) {
  int wanted = UV_WRITABLE;
  if (!conn->connecting) {
    wanted = (conn->id != 0 ? UV_READABLE : 0) | (conn->queue.empty() ? 0 : UV_WRITABLE);
  }
  if (wanted == conn->interest) return;
  conn->interest = wanted;
  uv_poll_start(&conn->poll, wanted, OnConnectionPoll);
}

void IoContext::OnConnectionPoll(uv_poll_t* poll, int status, int events) {
  auto* conn = static_cast<Connection*>(poll->data);
  IoContext* ctx = conn->ctx;
  if (conn->closed) return;
  if (conn->connecting) {
    ctx->FinishConnect(conn);
    return;
  }
  if (status < 0) {
    // libuv reports a socket error (POLLERR) as EBADF; the socket knows the real one.
    const int err = TakeSocketError(conn->fd);
    ctx->End(conn, err != 0 ? std::string("socket error: ") + std::strerror(err) : std::string("poll: ") + uv_strerror(status));
    return;
  }
  if ((events & UV_READABLE) != 0) {
    ctx->ReadAvailable(conn);
    if (conn->closed) return;
  }
  if ((events & UV_WRITABLE) != 0) ctx->WritePending(conn);
}

// ---- reading and framing ---------------------------------------------------

void IoContext::ReadAvailable(Connection* conn) {
  size_t budget_start = stats_.bytes_read;
  while (stats_.bytes_read - budget_start < kReadBudget) {
    if (batch_.pending_bytes() >= kMaxPendingBytes) return;
    const ReadOutcome outcome = conn->large.bytes ? ReadIntoLarge(conn) : ReadIntoBatch(conn);
    if (outcome != ReadOutcome::kMore) return;
  }
}

IoContext::ReadOutcome IoContext::ReadIntoBatch(Connection* conn) {
  const size_t carried = conn->partial.size();
  size_t room = 0;
  uint8_t* base = batch_.PrepareRead(carried, &room);
  if (carried != 0) std::memcpy(base, conn->partial.data(), carried);
  const ssize_t n = read(conn->fd, base + carried, room);
  if (n <= 0) return ReadFailed(conn, n);
  ++stats_.reads;
  stats_.bytes_read += static_cast<uint64_t>(n);
  ReleasePartial(conn);

  const size_t have = carried + static_cast<size_t>(n);
  size_t pos = 0;
  while (have - pos >= sizeof(uint32_t)) {
    uint32_t length = 0;
    std::memcpy(&length, base + pos, sizeof(length));
    if (!PacketLengthOk(length, conn->mode, options_.max_packet)) {
      batch_.CommitRead(pos);
      End(conn, PacketLengthError(length, conn->mode, options_.max_packet));
      return ReadOutcome::kEnded;
    }
    if (have - pos < length) break;
    batch_.AddPacket(conn->id, pos, length);
    ++stats_.packets;
    pos += length;
  }
  batch_.CommitRead(pos);
  if (pos < have && !CarryPartial(conn, base + pos, have - pos)) return ReadOutcome::kEnded;
  // A short read means the socket is empty: skip the read() that would say EAGAIN.
  return static_cast<size_t>(n) == room ? ReadOutcome::kMore : ReadOutcome::kDrained;
}

void IoContext::ReleasePartial(Connection* conn) {
  // Splits recur on busy connections, so a small buffer stays; idle ones should cost nothing.
  if (conn->partial.capacity() <= kKeptPartialCapacity) {
    conn->partial.clear();
  } else {
    std::vector<uint8_t>().swap(conn->partial);
  }
}

bool IoContext::CarryPartial(Connection* conn, const uint8_t* bytes, size_t size) {
  uint32_t length = 0;
  if (size >= sizeof(length)) std::memcpy(&length, bytes, sizeof(length));
  if (length <= PacketBatch::kMinReadRoom) {
    conn->partial.assign(bytes, bytes + size);
    return true;
  }
  // Read the rest straight into the packet's own memory: no growing, no copy later.
  conn->large = LargePacket::Allocate(length);
  if (!conn->large.bytes) {
    End(conn, "cannot allocate " + std::to_string(length) + " bytes for a packet");
    return false;
  }
  conn->large.filled = static_cast<uint32_t>(size);
  std::memcpy(conn->large.bytes.get(), bytes, size);
  return true;
}

IoContext::ReadOutcome IoContext::ReadIntoLarge(Connection* conn) {
  LargePacket& packet = conn->large;
  const size_t wanted = packet.length - packet.filled;
  const ssize_t n = read(conn->fd, packet.bytes.get() + packet.filled, wanted);
  if (n <= 0) return ReadFailed(conn, n);
  ++stats_.reads;
  stats_.bytes_read += static_cast<uint64_t>(n);
  packet.filled += static_cast<uint32_t>(n);
  if (packet.filled < packet.length) return ReadOutcome::kDrained;
  ++stats_.packets;
  ++stats_.large_packets;
  batch_.AddLarge(conn->id, std::move(packet));
  packet = LargePacket{};
  return ReadOutcome::kMore;
}

IoContext::ReadOutcome IoContext::ReadFailed(Connection* conn, ssize_t result) {
  if (result == 0) {
    const bool mid_packet = !conn->partial.empty() || conn->large.bytes;
    End(conn, mid_packet ? "connection closed by peer in the middle of a packet" : "connection closed by peer");
    return ReadOutcome::kEnded;
  }
  if (errno == EINTR) return ReadOutcome::kMore;
  if (WouldBlock(errno)) return ReadOutcome::kDrained;
  End(conn, std::string("read: ") + std::strerror(errno));
  return ReadOutcome::kEnded;
}

// ---- writing ---------------------------------------------------------------

bool IoContext::Send(uint32_t id, OutgoingBytes& bytes) {
  ConnectionSlot* slot = connections_.Find(id);
  if (slot == nullptr || slot->conn == nullptr) return false;
  Connection* conn = slot->conn;
  if (bytes.length() == 0) return true;
  if (conn->connecting || !conn->queue.empty()) return Enqueue(conn, bytes, 0);
  const ssize_t n = send(conn->fd, bytes.data(), bytes.length(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ++stats_.writes;
  if (n < 0 && !WouldBlock(errno) && errno != EINTR) {
    End(conn, std::string("write: ") + std::strerror(errno));
    return false;
  }
  const size_t written = n < 0 ? 0 : static_cast<size_t>(n);
  stats_.bytes_written += written;
  if (written == bytes.length()) return true;
  ++stats_.eagain_waits;
  return Enqueue(conn, bytes, written);
}

bool IoContext::Enqueue(Connection* conn, OutgoingBytes& bytes, size_t offset) {
  if (conn->queue.packets() >= options_.max_queue_packets) {
    End(conn, "send queue overflow: " + std::to_string(conn->queue.packets()) + " packets pending");
    return false;
  }
  conn->queue.Push(bytes, offset);
  UpdateInterest(conn);
  return true;
}

bool IoContext::WritePending(Connection* conn) {
  int err = 0;
  switch (conn->queue.Flush(conn->fd, &stats_.writes, &stats_.bytes_written, &err)) {
    case SendQueue::FlushResult::kFailed:
      End(conn, std::string("write: ") + std::strerror(err));
      return false;
    case SendQueue::FlushResult::kDrained:
      if (conn->id == 0) {
        Release(conn);  // closeAfterFlush is done
        return false;
      }
      break;
    case SendQueue::FlushResult::kBlocked:
      break;
  }
  UpdateInterest(conn);
  return true;
}

// ---- closing ---------------------------------------------------------------

void IoContext::Close(uint32_t id) {
  ConnectionSlot* slot = connections_.Find(id);
  if (slot == nullptr) return;
  Connection* conn = slot->conn;
  // Erasing the slot also cancels a close report not yet delivered.
  connections_.Erase(id);
  if (conn != nullptr) Release(conn);
}

void IoContext::CloseAfterFlush(uint32_t id) {
  ConnectionSlot* slot = connections_.Find(id);
  if (slot == nullptr) return;
  Connection* conn = slot->conn;
  connections_.Erase(id);
  if (conn == nullptr) return;
  conn->id = 0;
  if (conn->queue.empty()) {
    Release(conn);
  } else {
    UpdateInterest(conn);
  }
}

void IoContext::End(Connection* conn, const std::string& reason) {
  EndWithEvent(conn, Event{EventKind::kClosed, conn->id, 0, {}, 0, reason});
}

void IoContext::EndWithEvent(Connection* conn, Event event) {
  if (conn->id != 0) {
    connections_.Find(conn->id)->conn = nullptr;
    Queue(std::move(event));
  }
  Release(conn);
}

void IoContext::Release(Connection* conn) {
  conn->closed = true;
  live_.erase(conn);
  ++stats_.closes;
  uv_poll_stop(&conn->poll);
  close(conn->fd);
  conn->fd = -1;
  uv_close(AsHandle(&conn->poll), [](uv_handle_t* handle) {
    auto* closing = static_cast<Connection*>(handle->data);
    IoContext* ctx = closing->ctx;
    delete closing;
    ctx->HandleClosed();
  });
}

void IoContext::HandleClosed() {
  if (--open_handles_ == 0 && shutting_down_) {
    napi_remove_async_cleanup_hook(cleanup_hook_);
    delete this;
  }
}

void IoContext::Shutdown(napi_async_cleanup_hook_handle hook, void* self) {
  auto* ctx = static_cast<IoContext*>(self);
  ctx->cleanup_hook_ = hook;
  ctx->shutting_down_ = true;
  ctx->listeners_.ForEach([ctx](uint32_t, Listener* listener) { ctx->ReleaseListener(listener); });
  for (Connection* conn : std::vector<Connection*>(ctx->live_.begin(), ctx->live_.end())) ctx->Release(conn);
  if (ctx->started_) {
    ctx->on_packets_.Reset();
    ctx->on_accepted_.Reset();
    ctx->on_connected_.Reset();
    ctx->on_closed_.Reset();
    ctx->receiver_.Reset();
    ctx->async_context_.reset();
    uv_close(AsHandle(&ctx->check_), [](uv_handle_t* handle) { static_cast<IoContext*>(handle->data)->HandleClosed(); });
    uv_close(AsHandle(&ctx->idle_), [](uv_handle_t* handle) { static_cast<IoContext*>(handle->data)->HandleClosed(); });
  }
  if (ctx->open_handles_ == 0) {
    napi_remove_async_cleanup_hook(hook);
    delete ctx;
  }
}

// ---- delivery to JS --------------------------------------------------------

void IoContext::Queue(Event event) {
  events_.push_back(std::move(event));
  if (!idle_active_ && !shutting_down_) {
    uv_idle_start(&idle_, [](uv_idle_t*) {});
    idle_active_ = true;
  }
}

void IoContext::OnCheck(uv_check_t* check) { static_cast<IoContext*>(check->data)->Flush(); }

void IoContext::Flush() {
  if (events_.empty() && batch_.empty()) return;
  // A terminating worker stops JS for good between loop phases; then every napi
  // call that could run JS fails, and node-addon-api would make that fatal.
  if (!JsCallable()) return;
  Napi::HandleScope scope(env_);
  std::vector<Event> events;
  events.swap(events_);
  // A connection's story reads in order: accepted/connected, its packets, closed.
  const auto opening = [](const Event& event) {
    return event.kind == EventKind::kAccepted || event.kind == EventKind::kConnected;
  };
  for (Event& event : events) {
    if (opening(event) && !Deliver(event)) return;
  }
  if (!batch_.empty() && !DeliverPackets()) return;
  for (Event& event : events) {
    if (!opening(event) && !Deliver(event)) return;
  }
  if (events_.empty() && idle_active_ && !shutting_down_) {
    uv_idle_stop(&idle_);
    idle_active_ = false;
  }
}

bool IoContext::JsCallable() {
  // napi_coerce_to_bool checks exactly what every JS-facing napi call checks first.
  napi_value probe = nullptr;
  napi_value coerced = nullptr;
  return napi_get_boolean(env_, true, &probe) == napi_ok && napi_coerce_to_bool(env_, probe, &coerced) == napi_ok;
}

bool IoContext::Deliver(Event& event) {
  ConnectionSlot* slot = connections_.Find(event.conn);
  if (slot == nullptr || shutting_down_) return true;  // JS closed it meanwhile
  // Only primitives cross here: the facade builds peers and errors, so nothing on
  // this path can fail fatally while a worker is being terminated.
  Napi::Env env = env_;
  const Napi::Number conn = Napi::Number::New(env, event.conn);
  const auto number = [env](double value) { return Napi::Number::New(env, value); };
  switch (event.kind) {
    case EventKind::kAccepted:
      if (event.peer.is_unix) {
        return Call(on_accepted_, {number(event.listener), conn, number(event.peer.pid), number(event.peer.uid), number(event.peer.gid)});
      }
      return Call(on_accepted_, {number(event.listener), conn, Napi::String::New(env, event.peer.address), number(event.peer.port)});
    case EventKind::kConnected:
      return slot->conn == nullptr || Call(on_connected_, {conn});
    case EventKind::kConnectFailed: {
      if (slot->conn != nullptr) return true;
      connections_.Erase(event.conn);
      const char* code = strerrorname_np(event.err);
      const std::string message = event.text + ": " + std::strerror(event.err);
      return Call(on_connected_, {conn, Napi::String::New(env, message), Napi::String::New(env, code != nullptr ? code : "EUNKNOWN"), number(event.err)});
    }
    case EventKind::kClosed:
      if (slot->conn != nullptr) return true;
      connections_.Erase(event.conn);
      return Call(on_closed_, {conn, Napi::String::New(env, event.text)});
  }
  return true;
}

bool IoContext::DeliverPackets() {
  napi_value blocks = nullptr;
  napi_value table = nullptr;
  ++stats_.batches;
  return batch_.Take(env_, &blocks, &table) && Call(on_packets_, {blocks, table});
}

bool IoContext::Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  // Raw napi: node-addon-api's wrapper turns a failed call into a fatal error when it
  // cannot rethrow, which is what happens while a worker is being terminated.
  napi_value result = nullptr;
  if (napi_make_callback(env_, *async_context_, receiver_.Value(), fn.Value(), args.size(), args.begin(), &result) == napi_ok) {
    return true;
  }
  bool pending = false;
  napi_value error = nullptr;
  if (napi_is_exception_pending(env_, &pending) != napi_ok || !pending ||
      napi_get_and_clear_last_exception(env_, &error) != napi_ok) {
    return false;
  }
  if (!JsCallable()) return false;
  // Same fate as a throw from any other I/O callback: 'uncaughtException'.
  napi_fatal_exception(env_, error);
  return true;
}

}  // namespace ctdb::io
