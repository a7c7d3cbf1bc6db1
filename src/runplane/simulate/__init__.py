"""What-if autoscaling (``runplane simulate``, docs/autoscaling.md): a job trace replayed
through the real controller (autoscaler, policies, scheduler, FlashBoot, breaker) on a
virtual clock, against a simulated world of queues and worker processes.

- ``trace``: jobs (arrival, execution time, endpoint) from CSV/JSON files;
- ``history``: a trace and measured cold starts from an installation's own store;
- ``generators``: seeded synthetic traces (steady, diurnal, bursty, spike);
- ``timing``: cold-start and revival time distributions;
- ``world``: the simulated queues, registry, provider and billing the controller drives;
- ``engine``: the controller's loop on the virtual clock; one run per candidate;
- ``outcome``: what one run measured (GPU-seconds, cost, delays, cold starts, workers);
- ``sweep``: candidate settings and the cheapest one meeting a delay target;
- ``report``: the rich table and the matplotlib plots.
"""
