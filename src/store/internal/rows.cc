#include "store/internal/rows.h"

namespace locrit::store_internal {

Message ReadMessage(const Stmt& s, int first) {
  Message m;
  m.seq = s.Int(first);
  m.id = s.Text(first + 1);
  m.session_id = s.Text(first + 2);
  m.user_id = s.Text(first + 3);
  m.role = ParseRole(s.TextView(first + 4)).value_or(Role::kUser);
  m.content = s.Text(first + 5);
  m.created_at = s.Int(first + 6);
  m.metadata = s.Text(first + 7);
  m.status = ParseMessageStatus(s.TextView(first + 8)).value_or(MessageStatus::kOk);
  return m;
}

Session ReadSession(const Stmt& s, int first) {
  Session out;
  out.id = s.Text(first);
  out.user_id = s.Text(first + 1);
  out.name = s.Text(first + 2);
  out.topic = s.Text(first + 3);
  out.created_at = s.Int(first + 4);
  out.last_activity = s.Int(first + 5);
  out.message_count = s.Int(first + 6);
  return out;
}

Memory ReadMemory(const Stmt& s, int first) {
  Memory m;
  m.id = s.Text(first);
  m.content = s.Text(first + 1);
  m.importance = s.Double(first + 2);
  m.created_at = s.Int(first + 3);
  m.last_accessed = s.Int(first + 4);
  m.metadata = s.Text(first + 5);
  return m;
}

Concept ReadConcept(const Stmt& s, int first) {
  Concept c;
  c.id = s.Text(first);
  c.name = s.Text(first + 1);
  c.type = s.Text(first + 2);
  c.description = s.Text(first + 3);
  c.confidence = s.Double(first + 4);
  c.created_at = s.Int(first + 5);
  return c;
}

Topic ReadTopic(const Stmt& s, int first) {
  Topic t;
  t.id = s.Text(first);
  t.name = s.Text(first + 1);
  t.description = s.Text(first + 2);
  t.category = s.Text(first + 3);
  t.created_at = s.Int(first + 4);
  return t;
}

}  // namespace locrit::store_internal
