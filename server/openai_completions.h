// POST /v1/completions and /v1/chat/completions: the body read and resolved as a gRPC
// Generate is, submitted to the scheduler, and its events relayed as one JSON body or as
// server-sent events. A streaming client that goes away has its request cancelled.
#pragma once

#include "server/openai_http.h"
#include "server/openai_request.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace grinqh {

void HandleCompletion(OpenAiServing& serving, OpenAiEndpoint endpoint, const httplib::Request& http_request,
                      httplib::Response& http_response);

// Answers with OpenAI's error object.
void RespondWithError(const OpenAiError& error, httplib::Response& http_response);

}  // namespace grinqh
