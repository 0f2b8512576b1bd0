// Per-environment owner of every socket of the io module: listeners, accepted and
// outgoing connections, their libuv poll handles, and the events waiting for JS.
// All JS callbacks happen from one place (Flush, on a uv_check handle) so that
// JS never runs while a connection is half-way through a read or write.
#pragma once
#include <napi.h>
#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "io/framing.h"
#include "io/id_table.h"
#include "io/packet_batch.h"
#include "io/send_queue.h"
#include "io/sockets.h"

namespace ctdb::io {

struct IoOptions {
  uint32_t max_packet = kDefaultMaxPacket;
  size_t max_queue_packets = 1000000;  // CTDB's MaxQueueDropMsg
};

struct IoStats {
  uint64_t reads = 0;
  uint64_t bytes_read = 0;
  uint64_t packets = 0;
  uint64_t large_packets = 0;
  uint64_t batches = 0;
  uint64_t writes = 0;
  uint64_t bytes_written = 0;
  uint64_t eagain_waits = 0;
  uint64_t accepts = 0;
  uint64_t connects = 0;
  uint64_t closes = 0;
};

struct PeerInfo {
  bool is_unix = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string address;
  uint16_t port = 0;
};

class IoContext;

struct Connection {
  IoContext* ctx = nullptr;
  uint32_t id = 0;  // 0 once JS gave it up with closeAfterFlush: drains, then closes silently
  int fd = -1;
  FramingMode mode = FramingMode::kClient;
  bool connecting = false;
  bool closed = false;
  int interest = 0;
  std::string remote;  // outgoing connections: for the connect error message
  uv_poll_t poll;
  std::vector<uint8_t> partial;  // start of a packet that fits the shared batch
  LargePacket large;             // or one that gets memory of its own
  SendQueue queue;
};

struct Listener {
  IoContext* ctx = nullptr;
  int fd = -1;
  FramingMode mode = FramingMode::kClient;
  bool is_unix = false;
  uint32_t id = 0;
  int open_handles = 0;
  uv_poll_t poll;
  uv_timer_t retry;  // accept paused after EMFILE and friends
};

class IoContext {
 public:
  explicit IoContext(Napi::Env env) : env_(env) {}
  IoContext(const IoContext&) = delete;
  IoContext& operator=(const IoContext&) = delete;

  bool started() const { return started_; }
  void Start(Napi::Object callbacks, const IoOptions& options);

  // On failure the returned result carries errno and the operation; *id is unset.
  SocketResult ListenUnix(const std::string& path, unsigned mode, uint32_t* id);
  SocketResult ListenTcp(const IpEndpoint& local, uint32_t* id);
  SocketResult ConnectTcp(const IpEndpoint* local, const IpEndpoint& remote, uint32_t* id);
  bool CloseListener(uint32_t id);
  int ListenerPort(uint32_t id);

  bool Send(uint32_t conn, OutgoingBytes& bytes);
  void Close(uint32_t conn);
  void CloseAfterFlush(uint32_t conn);
  const IoStats& stats() const { return stats_; }

  // napi async cleanup hook: closes everything, frees the context once libuv let go.
  static void Shutdown(napi_async_cleanup_hook_handle hook, void* self);

 private:
  enum class EventKind { kAccepted, kConnected, kConnectFailed, kClosed };
  struct Event {
    EventKind kind;
    uint32_t conn;
    uint32_t listener = 0;
    PeerInfo peer{};
    int err = 0;
    std::string text{};
  };
  enum class ReadOutcome { kMore, kDrained, kEnded };
  // A slot whose connection is null ended on the native side and awaits its report.
  struct ConnectionSlot {
    Connection* conn;
  };

  static void OnConnectionPoll(uv_poll_t* poll, int status, int events);
  static void OnListenerPoll(uv_poll_t* poll, int status, int events);
  static void OnListenerRetry(uv_timer_t* timer);
  static void OnCheck(uv_check_t* check);
  static void OnHandleClosed(uv_handle_t* handle);

  uint32_t AddListener(int fd, FramingMode mode, bool is_unix);
  uint32_t AddConnection(int fd, FramingMode mode, bool connecting);
  void AcceptPending(Listener* listener);
  void FinishConnect(Connection* conn);
  void ReadAvailable(Connection* conn);
  ReadOutcome ReadIntoBatch(Connection* conn);
  ReadOutcome ReadIntoLarge(Connection* conn);
  ReadOutcome ReadFailed(Connection* conn, ssize_t result);
  void ReleasePartial(Connection* conn);
  bool CarryPartial(Connection* conn, const uint8_t* bytes, size_t size);
  bool WritePending(Connection* conn);
  bool Enqueue(Connection* conn, OutgoingBytes& bytes, size_t offset);
  void UpdateInterest(Connection* conn);

  // The connection is gone: JS hears `reason` (or the connect error) at the next flush.
  void End(Connection* conn, const std::string& reason);
  void EndWithEvent(Connection* conn, Event event);
  void Release(Connection* conn);
  void ReleaseListener(Listener* listener);
  void HandleClosed();

  void Queue(Event event);
  void Flush();
  // These return false once JS cannot run any more (a worker being terminated).
  bool JsCallable();
  bool Deliver(Event& event);
  bool DeliverPackets();
  bool Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args);

  Napi::Env env_;
  uv_loop_t* loop_ = nullptr;
  bool started_ = false;
  bool shutting_down_ = false;
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
  int open_handles_ = 0;
  IoOptions options_;
  IoStats stats_;

  uv_check_t check_;
  uv_idle_t idle_;  // active while events wait: keeps poll from blocking before the flush
  bool idle_active_ = false;

  Napi::ObjectReference receiver_;
  Napi::FunctionReference on_packets_;
  Napi::FunctionReference on_accepted_;
  Napi::FunctionReference on_connected_;
  Napi::FunctionReference on_closed_;
  std::optional<Napi::AsyncContext> async_context_;

  IdTable<ConnectionSlot> connections_;
  IdTable<Listener*> listeners_;
  std::unordered_set<Connection*> live_;  // includes connections draining after closeAfterFlush
  PacketBatch batch_;
  std::vector<Event> events_;
};

}  // namespace ctdb::io
