#!/usr/bin/env python3
"""An idempotent client for bench/failover.sh: THREADS threads post transfers with their own
ids through the gateway, each sent again with the same id after a 5xx or a lost answer
(as DESIGN.md section 4 tells a client to), until the file STOP exists. Every answer is
logged, one line each: "sent_s done_s status id" (wall-clock seconds, the clock
bench/failover.sh stamps its events with). Stdlib only.

Usage: idempotent_client.py HOST:PORT TOKEN_FILE ACCOUNTS THREADS STOP LOG
"""
import http.client
import os
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
token = open(sys.argv[2]).read().strip()
accounts, threads = int(sys.argv[3]), int(sys.argv[4])
stop_file, log_path = sys.argv[5], sys.argv[6]
log = open(log_path, "w", buffering=1)  # line-buffered: watchers read it as it grows
lock = threading.Lock()
ATTEMPTS_MAX = 1000  # per id: a client keeps trying through a failover


def client(number):
    conn = None
    n = 0
    while not os.path.exists(stop_file):
        n += 1
        tid = f"fo-{number}-{n}"
        body = (f'{{"transactionId":"{tid}","sourceAccountNumber":"a{(number + n) % accounts}",'
                f'"destinationAccountNumber":"a{(number + n + 1) % accounts}","amount":1}}')
        for _ in range(ATTEMPTS_MAX):
            sent = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("POST", "/accounts/transactions", body,
                             {"Content-Type": "application/json", "Authorization": "Bearer " + token})
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0  # no answer
                if conn is not None:
                    conn.close()
                conn = None
            done = time.time()
            with lock:
                log.write(f"{sent:.6f} {done:.6f} {status} {tid}\n")
            if status in (200, 201) or 400 <= status < 500:
                break
            time.sleep(0.02)
            if os.path.exists(stop_file):
                break


workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
log.close()
