"""`smlocal bench`: load against any target the contract suite knows, swept over concurrency.

One concept per module:
- workload.py: what is sent (bodies, content types, accepts, expected statuses);
- sending.py: what the generator needs of a transport (Driver, Send, NoAnswer);
- drivers.py: how requests travel to each kind of target, asynchronously;
- rawhttp.py: a lean HTTP/1.1 client, so the generator is not what is measured;
- load.py: the load generator itself (N concurrent users, a request or time budget);
- limits.py: the bounds of a run;
- stats.py: latency percentiles, throughput and status counts of one level;
- progress.py: a tqdm bar on a terminal, plain periodic lines elsewhere;
- report.py: the printed table, the JSON document and the PNG chart;
- command.py: `smlocal bench` end to end; parser.py: its arguments (harness/cli.py wires them);
- servers.py: loopback servers the benchmarks start themselves (a container, `smlocal serve`,
  the AWS stack from a venv);
- process.py: memory and open files of a server's process tree;
- loopback.py: a server that answers at once, to measure the generator's own cost.
"""
