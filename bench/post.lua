-- wrk request for the benchmarks: a small generateContent call with the rotator's access token.
wrk.method = "POST"
wrk.body = '{"contents":[{"parts":[{"text":"Hello"}]}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-goog-api-key"] = "bench-access-token-0123456789"
