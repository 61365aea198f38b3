-- wrk script: send each request with the next Cookie header of a file (one a line), round
-- robin, so the connections spread over many sessions instead of sharing one.
-- Usage: wrk ... -s bench/rotate_cookies.lua URL -- COOKIES_FILE
local cookies = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then cookies[#cookies + 1] = line end
  end
  if #cookies == 0 then error("no cookies in " .. args[1]) end
end

function request()
  i = i % #cookies + 1
  return wrk.format(nil, nil, { ["Cookie"] = cookies[i] })
end
