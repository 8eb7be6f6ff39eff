// IoPool internals and the Asio/Beast types shared by server.cc and client.cc only (Beast is
// heavy to include, so nothing else includes this header).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include <chrono>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>

#include "http/io_pool.h"

namespace abgate::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
// Concrete executor types instead of any_io_executor: type erasure showed up at several percent
// of CPU in profiles (copies and destroys per operation).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;

struct IoPool::Impl {
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
};

}  // namespace abgate::http
