#include "memory/memory_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "memory/recovery.h"

namespace locrit {

// ---------------------------------------------------------------------------------------------
// LocritMemory

LocritMemory::LocritMemory(MemoryManager* manager, std::string slug, std::string directory,
                           LocritMemoryOptions options)
    : manager_(manager),
      slug_(std::move(slug)),
      directory_(std::move(directory)),
      options_(options) {}

LocritMemory::~LocritMemory() = default;

size_t LocritMemory::QueuedWrites() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_queue_.size();
}

int64_t LocritMemory::BatchesCommitted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_committed_;
}

StoreOptions LocritMemory::BaseStoreOptions() const {
  const MemoryManagerOptions& m = manager_->options_;
  StoreOptions o;
  o.path = (std::filesystem::path(directory_) / "memory.db").string();
  o.clock = m.clock;
  o.ids = m.ids;
  o.durability = m.durability;
  o.max_messages = options_.max_messages;
  o.vfs = m.vfs;
  return o;
}

Result<std::unique_ptr<MemoryStore>> LocritMemory::OpenChecked() {
  auto store = MemoryStore::Open(BaseStoreOptions());
  if (!store.ok()) return store.status();
  ASSIGN_OR_RETURN(const std::string check, (*store)->QuickCheck());
  if (check != "ok") return CorruptionError("integrity check failed: " + check);
  return store;
}

Status LocritMemory::OpenWriter() {
  std::error_code ec;
  std::filesystem::create_directories(directory_, ec);
  if (ec) return IoError(fmt::format("cannot create {}: {}", directory_, ec.message()));
  ASSIGN_OR_RETURN(FileLock lock,
                   FileLock::Acquire((std::filesystem::path(directory_) / "lock").string()));
  const std::string context = fmt::format("memory of {}", slug_);

  if (RecoveryInterrupted(directory_)) {
    RETURN_IF_ERROR(
        RecoverMemory(directory_, BaseStoreOptions(), "resuming an interrupted recovery").status());
    recovered_ = true;
    manager_->recoveries_.Add();
  } else if (!recover_reason_.empty()) {
    // Damage was found while the store was in use (see MarkDamaged): repair before reopening.
    auto event = RecoverMemory(directory_, BaseStoreOptions(), recover_reason_);
    if (!event.ok()) return event.status().WithContext(context + ": recovery failed");
    recovered_ = true;
    manager_->recoveries_.Add();
  }
  auto store = OpenChecked();
  // Only corruption is repaired; any other error (busy, I/O, permissions) leaves the files as
  // they are and is reported to the caller.
  if (!store.ok() && store.status().code() == StatusCode::kCorruption && !recovered_) {
    auto event = RecoverMemory(directory_, BaseStoreOptions(), store.status().message());
    if (!event.ok()) return event.status().WithContext(context + ": recovery failed");
    recovered_ = true;
    manager_->recoveries_.Add();
    store = OpenChecked();
  }
  if (!store.ok()) return store.status().WithContext(context);
  (*store)->ReleaseMemory();
  lock_.emplace(std::move(lock));
  writer_ = std::move(store).value();
  {
    std::lock_guard<std::mutex> guard(mu_);
    integrity_ = "ok";
    checked_at_ = manager_->options_.clock->NowMillis();
    last_snapshot_at_ = checked_at_;
  }
  return Status::Ok();
}

void LocritMemory::CloseAll() {
  std::vector<std::shared_ptr<MemoryStore>> readers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    readers.swap(idle_readers_);
    readers_open_ = 0;
  }
  readers.clear();
  if (writer_) {
    // Best effort: a failed checkpoint leaves the WAL in place, which the next open replays.
    (void)writer_->Checkpoint();
    writer_.reset();
  }
  lock_.reset();
}

void LocritMemory::OperationStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  ++in_flight_;
}

void LocritMemory::OperationFinished() {
  bool idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle = --in_flight_ == 0;
  }
  if (idle) manager_->MaybeIdle(slug_);
}

void LocritMemory::EnqueueWrite(WriteTask task) {
  if (!manager_->accepting_writes_.load()) {
    task.finish(UnavailableError("the memory manager is shutting down"));
    return;
  }
  bool accepted = false;
  bool start = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (write_queue_.size() < manager_->options_.max_queued_writes) {
      accepted = true;
      ++in_flight_;
      if (!writer_running_) writer_running_ = start = true;
      write_queue_.push_back(std::move(task));
      manager_->queued_writes_.Add();
    }
  }
  if (!accepted) {
    task.finish(ResourceExhaustedError(
        fmt::format("memory of {} already has {} writes queued; try again later", slug_,
                    manager_->options_.max_queued_writes)));
    return;
  }
  if (start) {
    auto self = shared_from_this();
    manager_->options_.pool->Post([self] { self->DrainWrites(); });
  }
}

void LocritMemory::DrainWrites() {
  std::vector<WriteTask> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t n = std::min(write_queue_.size(),
                              static_cast<size_t>(std::max(1, manager_->options_.max_batch)));
    // A standalone task runs alone; batched tasks are taken up to the next standalone one.
    while (batch.size() < n) {
      const bool standalone = write_queue_.front().standalone;
      if (standalone && !batch.empty()) break;
      batch.push_back(std::move(write_queue_.front()));
      write_queue_.pop_front();
      manager_->queued_writes_.Sub();
      if (standalone) break;
    }
    if (batch.empty()) {
      writer_running_ = false;
      return;
    }
  }
  if (batch.front().standalone) {
    const Status status = batch.front().run(*writer_);
    if (status.code() == StatusCode::kCorruption) MarkDamaged(status.message());
    RepostIfMore();
    batch.front().finish(status);
    OperationFinished();
    return;
  }

  // One transaction for the whole batch; each write in its own savepoint.
  size_t ran = 0;
  Status batch_status = writer_->BeginBatch();
  if (batch_status.ok()) {
    for (; ran < batch.size(); ++ran) {
      const Status op_status = writer_->Atomically([&] { return batch[ran].run(*writer_); });
      if (op_status.code() == StatusCode::kCorruption) MarkDamaged(op_status.message());
      if (!writer_->InBatch()) {
        // SQLite abandoned the transaction (I/O error, full disk): the earlier writes are gone.
        batch_status = op_status.ok() ? IoError("the write batch was rolled back") : op_status;
        ++ran;
        break;
      }
    }
    if (batch_status.ok()) batch_status = writer_->CommitBatch();
    if (!batch_status.ok()) writer_->RollbackBatch();
    if (batch_status.code() == StatusCode::kCorruption) MarkDamaged(batch_status.message());
  } else {
    ran = batch.size();  // Could not even begin: every write of the batch fails with the reason.
  }

  {
    std::lock_guard<std::mutex> lock(mu_);
    // Writes that never ran go back to the front, in order, for the next batch.
    for (size_t i = batch.size(); i > ran; --i) {
      write_queue_.push_front(std::move(batch[i - 1]));
      manager_->queued_writes_.Add();
    }
    if (batch_status.ok()) ++batches_committed_;
  }
  RepostIfMore();
  for (size_t i = 0; i < ran; ++i) {
    batch[i].finish(batch_status);
    OperationFinished();
  }
}

bool LocritMemory::RepostIfMore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (write_queue_.empty()) {
      writer_running_ = false;
      return false;
    }
    writer_running_ = true;
  }
  // Re-post rather than loop, so other Locrits' work gets its turn on the pool.
  auto self = shared_from_this();
  manager_->options_.pool->Post([self] { self->DrainWrites(); });
  return true;
}

Status LocritMemory::WriteSnapshot(MemoryStore& store, std::string* path) {
  // Never snapshot damage: a snapshot is what recovery trusts.
  ASSIGN_OR_RETURN(const std::string check, store.IntegrityCheck());
  if (check != "ok") return CorruptionError("not snapshotting a damaged memory: " + check);
  const std::filesystem::path dir = std::filesystem::path(directory_) / "snapshots";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  const int64_t now = manager_->options_.clock->NowMillis();
  std::string file = (dir / (CompactUtcTimestamp(now) + ".db")).string();
  for (int i = 1; std::filesystem::exists(file); ++i) {
    file = (dir / fmt::format("{}-{}.db", CompactUtcTimestamp(now), i)).string();
  }
  RETURN_IF_ERROR(store.Snapshot(file));
  *path = file;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batches_at_snapshot_ = batches_committed_;
    last_snapshot_at_ = now;
  }
  const std::vector<std::string> all = ListSnapshots(directory_);
  const size_t keep = static_cast<size_t>(std::max(1, manager_->options_.snapshot_keep));
  for (size_t i = keep; i < all.size(); ++i) std::filesystem::remove(all[i], ec);
  return Status::Ok();
}

void LocritMemory::Snapshot(Done<std::string> done) {
  auto path = std::make_shared<std::string>();
  WriteTask task;
  task.standalone = true;
  task.run = [this, path](MemoryStore& store) {
    const Status status = WriteSnapshot(store, path.get());
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_queued_ = false;
    return status;
  };
  task.finish = [this, path, done = std::move(done)](Status status) {
    {
      // Also here: a snapshot refused before it ran (queue full, shutdown) is no longer queued.
      std::lock_guard<std::mutex> lock(mu_);
      snapshot_queued_ = false;
    }
    if (status.ok()) {
      done(*path);
    } else {
      done(status);
    }
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_queued_ = true;
  }
  EnqueueWrite(std::move(task));
}

void LocritMemory::VerifyIntegrity(Done<std::string> done) {
  auto result = std::make_shared<std::string>();
  WriteTask task;
  task.standalone = true;
  task.run = [this, result](MemoryStore& store) -> Status {
    auto check = store.IntegrityCheck();
    if (!check.ok() && check.status().code() != StatusCode::kCorruption) return check.status();
    // A check that trips over the damage itself is a finding, not a failure to check.
    *result = check.ok() ? *check : check.status().message();
    {
      std::lock_guard<std::mutex> lock(mu_);
      integrity_ = *result;
      checked_at_ = manager_->options_.clock->NowMillis();
    }
    if (*result != "ok") MarkDamaged("integrity check failed: " + *result);
    return Status::Ok();
  };
  task.finish = [result, done = std::move(done)](Status status) {
    if (status.ok()) {
      done(*result);
    } else {
      done(status);
    }
  };
  EnqueueWrite(std::move(task));
}

void LocritMemory::MarkDamaged(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!damage_.empty()) return;
    damage_ = reason;
  }
  fmt::print(stderr, "locrit: memory of {} is damaged ({}); it will be recovered when idle\n",
             slug_, reason);
}

std::string LocritMemory::Damage() const {
  std::lock_guard<std::mutex> lock(mu_);
  return damage_;
}

void LocritMemory::SnapshotIfDue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = manager_->options_.clock->NowMillis();
    if (snapshot_queued_ || batches_committed_ == batches_at_snapshot_ ||
        now - last_snapshot_at_ < manager_->options_.snapshot_interval_ms) {
      return;
    }
  }
  Snapshot([slug = slug_](Result<std::string> r) {
    if (!r.ok()) fmt::print(stderr, "locrit: snapshot of {} failed: {}\n", slug, r.status().ToString());
  });
}

void LocritMemory::Health(Done<MemoryHealth> done) {
  MemoryHealth base;
  base.slug = slug_;
  base.recovered_on_open = recovered_;
  base.max_messages = options_.max_messages;
  base.snapshots = ListSnapshots(directory_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    base.integrity = integrity_;
    base.checked_at = checked_at_;
  }
  Read<MemoryHealth>(
      [base](MemoryStore& store) -> Result<MemoryHealth> {
        MemoryHealth health = base;
        ASSIGN_OR_RETURN(health.last_recovery, store.LastRecoveryEvent());
        return health;
      },
      std::move(done));
}

Result<std::unique_ptr<MemoryStore>> LocritMemory::OpenReader() {
  StoreOptions o = BaseStoreOptions();
  o.read_only = true;
  return MemoryStore::Open(o);
}

void LocritMemory::EnqueueRead(ReadTask task) {
  std::shared_ptr<MemoryStore> reader;
  bool open_new = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
    if (!idle_readers_.empty()) {
      reader = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    } else if (readers_open_ < std::max(1, manager_->options_.max_concurrent_queries)) {
      ++readers_open_;
      open_new = true;
    } else {
      read_queue_.push_back(std::move(task));
      manager_->queued_reads_.Add();
      return;
    }
  }
  auto self = shared_from_this();
  manager_->options_.pool->Post([self, task = std::move(task), reader, open_new]() mutable {
    if (open_new) {
      auto opened = self->OpenReader();
      if (!opened.ok()) {
        {
          std::lock_guard<std::mutex> lock(self->mu_);
          --self->readers_open_;
        }
        (void)task.run(nullptr, opened.status());
        self->OperationFinished();
        return;
      }
      reader = std::move(opened).value();
    }
    self->RunRead(std::move(task), std::move(reader));
  });
}

void LocritMemory::RunRead(ReadTask task, std::shared_ptr<MemoryStore> reader) {
  const Status status = task.run(reader.get(), Status::Ok());
  if (status.code() == StatusCode::kCorruption) MarkDamaged(status.message());
  std::optional<ReadTask> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!read_queue_.empty()) {
      next = std::move(read_queue_.front());
      read_queue_.pop_front();
      manager_->queued_reads_.Sub();
    } else {
      idle_readers_.push_back(std::move(reader));
    }
  }
  if (next) {
    auto self = shared_from_this();
    manager_->options_.pool->Post([self, task = std::move(*next), reader]() mutable {
      self->RunRead(std::move(task), std::move(reader));
    });
  }
  OperationFinished();
}

// ---------------------------------------------------------------------------------------------
// MemoryManager

MemoryManager::MemoryManager(MemoryManagerOptions options) : options_(std::move(options)) {}

MemoryManager::~MemoryManager() { Shutdown(); }

bool MemoryManager::IsValidSlug(const std::string& slug) {
  if (slug.empty() || slug.size() > 64) return false;
  return std::all_of(slug.begin(), slug.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void MemoryManager::RunAll(Ready& ready) {
  for (auto& f : ready) f();
  ready.clear();
}

int MemoryManager::OpenStores() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(entries_.size());
}

int64_t MemoryManager::WaitingGets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(waiting_.size());
}

int64_t MemoryManager::OpensPerformed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return opens_;
}

int64_t MemoryManager::ClosesPerformed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closes_;
}

void MemoryManager::Get(const std::string& slug, const LocritMemoryOptions& options, GetDone done) {
  if (!IsValidSlug(slug)) {
    done(InvalidArgumentError(fmt::format("invalid memory slug '{}'", slug)));
    return;
  }
  Ready ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ready.push_back([done] { done(UnavailableError("the memory manager is shutting down")); });
    } else if (purged_.count(slug) != 0) {
      ready.push_back([done] { done(NotFoundError("this Locrit's memory was deleted")); });
    } else {
      AdmitLocked(PendingGet{slug, options, std::move(done)}, ready);
    }
  }
  RunAll(ready);
}

MemoryManager::Handle MemoryManager::PinLocked(Entry& entry) {
  ++entry.pins;
  entry.last_used = options_.clock->NowMillis();
  std::shared_ptr<LocritMemory> keep = entry.memory;
  LocritMemory* raw = keep.get();
  std::string slug = raw->slug();
  // Each handle has its own control block; releasing the last copy of it unpins the entry.
  return Handle(raw, [this, keep = std::move(keep), slug = std::move(slug)](LocritMemory*) {
    Unpin(slug);
  });
}

void MemoryManager::AdmitLocked(PendingGet get, Ready& ready) {
  auto it = entries_.find(get.slug);
  if (it != entries_.end()) {
    Entry& entry = it->second;
    if (entry.state == State::kOpen && !entry.memory->Damage().empty()) {
      // Hand out no new handle to damaged memory: wait for its close and recovering reopen.
      waiting_.push_back(std::move(get));
      CloseDamagedIfIdleLocked(entry);
      return;
    }
    if (entry.state == State::kOpen) {
      Handle handle = PinLocked(entry);
      ready.push_back([done = std::move(get.done), handle]() mutable { done(std::move(handle)); });
      return;
    }
    if (entry.state == State::kOpening) {
      entry.waiters.push_back(std::move(get.done));
      return;
    }
    // Closing: wait for the close, then open again.
  }
  waiting_.push_back(std::move(get));
  PumpWaitingLocked(ready);
}

void MemoryManager::PumpWaitingLocked(Ready& ready) {
  while (!waiting_.empty()) {
    PendingGet& get = waiting_.front();
    auto it = entries_.find(get.slug);
    if (it != entries_.end()) {
      if (it->second.state == State::kClosing) break;  // FinishClose pumps again.
      if (it->second.state == State::kOpen && !it->second.memory->Damage().empty()) {
        CloseDamagedIfIdleLocked(it->second);
        break;  // Its close, when idle, pumps again.
      }
      PendingGet admitted = std::move(get);
      waiting_.pop_front();
      AdmitLocked(std::move(admitted), ready);
      continue;
    }
    if (static_cast<int>(entries_.size()) < std::max(1, options_.max_open_stores)) {
      PendingGet admitted = std::move(get);
      waiting_.pop_front();
      StartOpenLocked(admitted.slug, admitted.options);
      entries_[admitted.slug].waiters.push_back(std::move(admitted.done));
      continue;
    }
    // Full: make room by closing idle stores, as many as there are waiters, then wait.
    int closing = 0;
    for (const auto& [slug, entry] : entries_) closing += entry.state == State::kClosing;
    while (closing < static_cast<int>(waiting_.size()) && EvictOneLocked()) ++closing;
    break;
  }
}

bool MemoryManager::EvictOneLocked() {
  Entry* victim = nullptr;
  for (auto& [slug, entry] : entries_) {
    if (entry.state != State::kOpen || entry.pins > 0) continue;
    {
      std::lock_guard<std::mutex> lock(entry.memory->mu_);
      if (entry.memory->in_flight_ > 0) continue;
    }
    if (victim == nullptr || entry.last_used < victim->last_used) victim = &entry;
  }
  if (victim == nullptr) return false;
  StartCloseLocked(*victim);
  return true;
}

bool MemoryManager::CloseDamagedIfIdleLocked(Entry& entry) {
  if (entry.state != State::kOpen || entry.pins > 0) return false;
  {
    std::lock_guard<std::mutex> lock(entry.memory->mu_);
    if (entry.memory->in_flight_ > 0) return false;
  }
  const std::string damage = entry.memory->Damage();
  if (damage.empty()) return false;
  recover_on_open_[entry.memory->slug()] = damage;
  StartCloseLocked(entry);
  return true;
}

bool MemoryManager::ClosePurgedIfIdleLocked(Entry& entry) {
  if (entry.purges.empty() || entry.state != State::kOpen || entry.pins > 0) return false;
  {
    std::lock_guard<std::mutex> lock(entry.memory->mu_);
    if (entry.memory->in_flight_ > 0) return false;
  }
  StartCloseLocked(entry);
  return true;
}

void MemoryManager::StartCloseLocked(Entry& entry) {
  entry.state = State::kClosing;
  std::shared_ptr<LocritMemory> memory = entry.memory;
  options_.pool->Post([this, memory] {
    memory->CloseAll();
    FinishClose(memory->slug());
  });
}

std::string MemoryManager::DirectoryOf(const std::string& slug) const {
  return (std::filesystem::path(options_.data_dir) / "locrits" / slug).string();
}

void MemoryManager::StartOpenLocked(const std::string& slug, const LocritMemoryOptions& options) {
  Entry& entry = entries_[slug];
  entry.memory = std::make_shared<LocritMemory>(this, slug, DirectoryOf(slug), options);
  if (auto it = recover_on_open_.find(slug); it != recover_on_open_.end()) {
    entry.memory->recover_reason_ = it->second;
    recover_on_open_.erase(it);
  }
  entry.state = State::kOpening;
  std::shared_ptr<LocritMemory> memory = entry.memory;
  options_.pool->Post([this, memory] { FinishOpen(memory->slug(), memory->OpenWriter()); });
}

void MemoryManager::FinishOpen(const std::string& slug, Status status) {
  Ready ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(slug);
    if (it == entries_.end()) return;  // Cannot happen: opening entries are never erased.
    Entry& entry = it->second;
    std::vector<GetDone> waiters;
    waiters.swap(entry.waiters);
    if (status.ok()) {
      entry.state = State::kOpen;
      entry.opened = true;
      ++opens_;
      for (auto& done : waiters) {
        Handle handle = PinLocked(entry);
        ready.push_back([done = std::move(done), handle]() mutable { done(std::move(handle)); });
      }
      ClosePurgedIfIdleLocked(entry);
    } else if (!entry.purges.empty()) {
      // Purged while opening: the directory still goes, after the failed open lets go of it.
      for (auto& done : waiters) {
        ready.push_back([done = std::move(done), status] { done(status); });
      }
      StartCloseLocked(entry);
    } else {
      entries_.erase(it);
      for (auto& done : waiters) {
        ready.push_back([done = std::move(done), status] { done(status); });
      }
      PumpWaitingLocked(ready);
      if (stopping_ && entries_.empty()) all_closed_.notify_all();
    }
  }
  RunAll(ready);
}

void MemoryManager::FinishClose(const std::string& slug) {
  Ready ready;
  bool purging = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(slug);
    if (it != entries_.end()) {
      closes_ += it->second.opened;
      purging = !it->second.purges.empty();
      if (!purging) entries_.erase(it);
    }
    if (!purging) {
      PumpWaitingLocked(ready);
      if (stopping_ && entries_.empty()) all_closed_.notify_all();
    }
  }
  if (purging) return FinishPurge(slug);
  RunAll(ready);
}

void MemoryManager::FinishPurge(const std::string& slug) {
  // The entry stays (closing) until the directory is gone, so no open can race the removal.
  const std::string directory = DirectoryOf(slug);
  std::error_code ec;
  std::filesystem::remove_all(directory, ec);
  const Status status =
      ec ? IoError(fmt::format("cannot remove {}: {}", directory, ec.message())) : Status::Ok();
  Ready ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(slug);
    if (it != entries_.end()) {
      for (auto& done : it->second.purges) {
        ready.push_back([done = std::move(done), status] { done(status); });
      }
      entries_.erase(it);
    }
    recover_on_open_.erase(slug);
    PumpWaitingLocked(ready);
    if (stopping_ && entries_.empty()) all_closed_.notify_all();
  }
  RunAll(ready);
}

void MemoryManager::Purge(const std::string& slug, PurgeDone done) {
  if (!IsValidSlug(slug)) {
    done(InvalidArgumentError(fmt::format("invalid memory slug '{}'", slug)));
    return;
  }
  Ready ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ready.push_back([done] { done(UnavailableError("the memory manager is shutting down")); });
    } else {
      purged_.insert(slug);
      // Gets queued for a free slot would open the memory again: refuse them now.
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->slug != slug) {
          ++it;
          continue;
        }
        ready.push_back([get_done = std::move(it->done)] {
          get_done(NotFoundError("this Locrit's memory was deleted"));
        });
        it = waiting_.erase(it);
      }
      auto it = entries_.find(slug);
      if (it == entries_.end()) {
        // Nothing open: a closing entry all the same, so no Get can open it during the removal.
        Entry& entry = entries_[slug];
        entry.memory =
            std::make_shared<LocritMemory>(this, slug, DirectoryOf(slug), LocritMemoryOptions{});
        entry.purges.push_back(std::move(done));
        StartCloseLocked(entry);
      } else {
        // Opening, open or closing: the purge follows once its users are gone (MaybeIdle,
        // FinishOpen, FinishClose).
        it->second.purges.push_back(std::move(done));
        ClosePurgedIfIdleLocked(it->second);
      }
    }
  }
  RunAll(ready);
}

void MemoryManager::Unpin(const std::string& slug) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(slug);
    if (it == entries_.end()) return;
    --it->second.pins;
    it->second.last_used = options_.clock->NowMillis();
  }
  MaybeIdle(slug);
}

void MemoryManager::MaybeIdle(const std::string& slug) {
  Ready ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(slug);
    if (it == entries_.end() || it->second.state != State::kOpen || it->second.pins > 0) return;
    if (ClosePurgedIfIdleLocked(it->second)) return;
    if (CloseDamagedIfIdleLocked(it->second)) return;
    if (stopping_) {
      bool idle;
      {
        std::lock_guard<std::mutex> memory_lock(it->second.memory->mu_);
        idle = it->second.memory->in_flight_ == 0;
      }
      if (idle) StartCloseLocked(it->second);
    } else if (!waiting_.empty()) {
      PumpWaitingLocked(ready);
    }
  }
  RunAll(ready);
}

void MemoryManager::SnapshotDueStores() {
  std::vector<std::shared_ptr<LocritMemory>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [slug, entry] : entries_) {
      if (entry.state == State::kOpen && entry.purges.empty()) open.push_back(entry.memory);
    }
  }
  for (const auto& memory : open) memory->SnapshotIfDue();
}

void MemoryManager::Shutdown() {
  Ready ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      accepting_writes_ = false;
      for (auto& get : waiting_) {
        ready.push_back([done = std::move(get.done)] {
          done(UnavailableError("the memory manager is shutting down"));
        });
      }
      waiting_.clear();
    }
  }
  RunAll(ready);
  // Close what is idle now; the rest closes as its last handle or operation goes (MaybeIdle).
  std::vector<std::string> slugs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [slug, entry] : entries_) slugs.push_back(slug);
  }
  for (const auto& slug : slugs) MaybeIdle(slug);
  std::unique_lock<std::mutex> lock(mu_);
  all_closed_.wait(lock, [this] { return entries_.empty(); });
}

}  // namespace locrit
