#pragma once
/// Effect handlers: the per-thread stack that every site passes through.
#include <vector>

#include <ppl/core/message.hpp>

namespace ppl {

/// A handler sees every site of the program it wraps. `process` runs on the
/// way in (innermost handler first) and may set the value, the scale, the
/// mask, or stop the message; `postprocess` runs on the way out (innermost
/// first), after the value exists.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void process(Message&) {}
  virtual void postprocess(Message&) {}
};

/// Pushes a handler on this thread's stack for the lifetime of the scope.
class [[nodiscard]] HandlerScope {
 public:
  explicit HandlerScope(Handler& handler);
  ~HandlerScope();
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;

 private:
  Handler* handler_;
};

/// Sends `msg` through this thread's handlers and applies the default
/// behaviour (draw a value, read a parameter) when no handler supplied one.
void apply_stack(Message& msg);

/// The handlers active on this thread, outermost first.
const std::vector<Handler*>& handler_stack();

}  // namespace ppl
