-- callbacks.lua - drives backstop-sensor milter through every callback with
-- miltertest (no MTA): normal mail and a bounce are accepted, a bounce that
-- matches a cached decision gets 550 5.7.1 naming it, and malformed input
-- (long headers (miltertest itself crashes on one over ~2 KB; Postfix tests send bigger), thousands of
-- headers, broken MIME, 8-bit garbage, no body, no header at all,
-- aborted message) is accepted without crashing the filter.
-- Global from miltertest -D: sock (the running filter's socket).

local function check(cond, what)
    if not cond then error(what, 2) end
end

local function session(name, from, headers, body, want)
    local conn = mt.connect(sock, 40, 0.1)
    check(conn, name .. ": cannot connect to the filter")
    check(mt.conninfo(conn, "mx.reflector.example", "192.0.2.7") == nil, name .. ": conninfo")
    check(mt.mailfrom(conn, from) == nil, name .. ": mailfrom")
    check(mt.rcptto(conn, "<victim@test.example>") == nil, name .. ": rcptto")
    for _, h in ipairs(headers) do
        check(mt.header(conn, h[1], h[2]) == nil, name .. ": header " .. h[1])
    end
    if type(body) == "table" then
        -- several chunks, as an MTA sends a big body (each under 64 KB)
        for i = 1, body[2] do
            check(mt.bodystring(conn, body[1]) == nil, name .. ": body chunk " .. i)
            if mt.getreply(conn) == SMFIR_SKIP then break end
        end
    elseif body then
        check(mt.bodystring(conn, body) == nil, name .. ": body")
    end
    check(mt.eom(conn) == nil, name .. ": eom")
    if want == "accept" then
        check(mt.getreply(conn) == SMFIR_ACCEPT or mt.getreply(conn) == SMFIR_CONTINUE,
              name .. ": not accepted")
    else
        check(mt.getreply(conn) == SMFIR_REPLYCODE, name .. ": no SMTP reply code")
        check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1", want), name .. ": no 550 " .. want)
    end
    mt.disconnect(conn)
    print("ok: " .. name)
end

local dsn_body = "--B\r\nContent-Type: message/delivery-status\r\n\r\n" ..
    "Reporting-MTA: dns; mx.reflector.example\r\n\r\nFinal-Recipient: rfc822; x@y\r\n" ..
    "Action: failed\r\nStatus: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n" ..
    "Subject: cheap watches\r\nMessage-ID: <o1@spammer.example>\r\n\r\n--B--\r\n"
local dsn_headers = {
    {"From", "Mail Delivery System <MAILER-DAEMON@mx.reflector.example>"},
    {"Subject", "Undeliverable: cheap watches"},
    {"MIME-Version", "1.0"},
    {"Content-Type", "multipart/report; report-type=delivery-status; boundary=\"B\""},
}

local ok, err = pcall(function()
    mt.set_timeout(10)

    session("normal", "<alice@sender.example>",
            {{"From", "alice@sender.example"}, {"Subject", "hello"}}, "hi\r\n", "accept")
    session("bounce-other-subject", "<>",
            {{"From", "MAILER-DAEMON@x.example"}, {"Subject", "Undeliverable: garden party"}},
            "This message could not be delivered.\r\n", "accept")
    session("bounce-blocked", "<>", dsn_headers, dsn_body, "Message refused as backscatter (backstop decision F3057A67)")

    -- malformed input: accepted, never a crash
    session("huge-header", "<>", {{"Subject", string.rep("A", 1000)},
            {"X-Long", string.rep("b ", 400)}}, "x\r\n", "accept")
    local many = {}
    for i = 1, 2000 do many[i] = {"X-H" .. i, "v" .. i} end
    session("many-headers", "<a@b.example>", many, "x\r\n", "accept")
    session("broken-mime", "<>", {{"Content-Type", "multipart/mixed; boundary="},
            {"Subject", "Returned mail"}}, "--\r\n--\r\nContent-Type: message/rfc822\r\n\r\n" ..
            "--B--\r\n\0\0\0", "accept")
    session("eight-bit-garbage", "<\255\254@x>", {{"Subject", "\255\254\253\0\1\2 =?x?Q?=FF?="},
            {"From", "\200\201"}}, string.rep("\255\0\128\13\10", 5000), "accept")
    session("no-body", "<>", {{"Subject", "failure notice"}}, nil, "accept")
    session("no-headers", "<>", {}, nil, "accept")
    session("big-body", "<x@y.example>", {{"Subject", "big"}}, {string.rep("line of text\r\n", 4000), 40},
            "accept")

    -- an aborted message, then a new one on the same connection
    local conn = mt.connect(sock, 40, 0.1)
    check(mt.conninfo(conn, "h.example", "192.0.2.8") == nil, "abort: conninfo")
    check(mt.mailfrom(conn, "<>") == nil, "abort: mailfrom")
    check(mt.header(conn, "Subject", "x") == nil, "abort: header")
    check(mt.abort(conn) == nil, "abort: abort")
    check(mt.mailfrom(conn, "<a@b.example>") == nil, "abort: second mailfrom")
    check(mt.rcptto(conn, "<u@test.example>") == nil, "abort: rcpt")
    check(mt.header(conn, "Subject", "y") == nil, "abort: header 2")
    check(mt.eom(conn) == nil, "abort: eom")
    mt.disconnect(conn)
    print("ok: abort-then-message")

    -- the filter is still alive and answering
    session("still-alive", "<>", dsn_headers, dsn_body, "Message refused as backscatter (backstop decision F3057A67)")
end)
if not ok then
    print("FAIL: " .. tostring(err))
    os.exit(1)
end
