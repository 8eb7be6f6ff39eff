// IoPool internals, shared by server.cc and client.cc only (Asio is heavy to include).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "http/io_pool.h"

namespace abgate::http {

struct IoPool::Impl {
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
};

}  // namespace abgate::http
