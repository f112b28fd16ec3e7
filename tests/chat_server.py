"""A chat-completions endpoint on 127.0.0.1 for the HTTP judge's tests (test_judges,
test_experiment): it answers from a script or a function of the request, and records requests."""
import http.server
import json
import math
import threading
import time


def chat_response(content, top=None):
  """A chat-completions body; `top` maps tokens to probabilities for the first token's logprobs."""
  logprobs = None
  if top is not None:
    logprobs = {"content": [{"token": content, "logprob": math.log(top.get(content, 1e-3)),
                             "top_logprobs": [{"token": t, "logprob": math.log(p)}
                                              for t, p in top.items()]}]}
  return {"id": "cmpl-1", "object": "chat.completion", "model": "judge-model",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                       "logprobs": logprobs, "finish_reason": "length"}]}


class ChatServer:
  """A chat-completions endpoint on 127.0.0.1 answering from a script (at most MAX_REQUESTS)."""
  MAX_REQUESTS = 50

  def __init__(self):
    self.script = []  # (status, body: dict or str, headers) answered in order
    self.respond = None  # or a function of the request JSON -> (status, body, headers)
    self.requests = []  # (path, headers, body)
    self.delay = 0.0
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_POST(self):  # pylint: disable=invalid-name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = json.loads(body)
        server.requests.append((self.path, dict(self.headers), request))
        if len(server.requests) > server.MAX_REQUESTS:
          status, reply, headers = 503, "request budget spent", {}
        elif server.respond:
          status, reply, headers = server.respond(request)
        else:
          status, reply, headers = server.script.pop(0)
        time.sleep(server.delay)
        reply = reply if isinstance(reply, str) else json.dumps(reply)
        self.send_response(status)
        for name, value in headers.items():
          self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.encode())

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.httpd.handle_error = lambda *args: None  # a client that timed out closed the socket
    self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
    self.thread.start()
    self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()
    self.thread.join(timeout=5)
