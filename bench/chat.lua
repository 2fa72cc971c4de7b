-- wrk script: one chat turn per request (POST /api/locrits/{name}/chat with a JSON body), each
-- wrk thread in its own session so the sessions' histories grow like real conversations.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local session = string.format("bench-%d-%d", id, os.time())
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format(
    '{"message":"What did we say about the deployment plan?","session_id":"%s","user_id":"bench"}',
    session)
end
