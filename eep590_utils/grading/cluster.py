"""Phase 2 of ``eep590 autograde`` on a Ray cluster: one Ray task per notebook, GPUs where declared.

:func:`.autograde.autograde` stages and scores on the driver (one writer to the gradebook) and hands the
execute phase to ``cluster.run(keys, job_of)``; :class:`RayCluster` runs each :class:`.jobs.NotebookJob`
(the notebook and the student's other files as bytes, the judges' source, the limits) as a Ray task.
On the worker the task runs :func:`.jobs.run_with_retries`, i.e. today's executor: the kernel in
bubblewrap under the per-cell, per-notebook and memory limits, the judges outside the kernel. It
returns the executed notebook and its record; nothing of the course directory travels.

* **Resources.** A task asks for ``num_cpus`` CPUs (1) and, when the notebook says it needs a GPU
  (metadata ``{"eep590": {"gpu": true}}``), ``num_gpus=1``, so it runs only on a node with one. With
  ``reserve_memory`` it also reserves the kernel's memory limit, so Ray never packs more kernels on a
  node than its memory holds. A task that no node alive could ever run (a GPU notebook on a cluster
  without GPUs) is not left pending forever: it is a fault at once, with the reason.
* **Faults.** A task lost with its worker process or node is run again elsewhere by Ray
  (``max_retries = max_tries - 1``); an exception raised in the task is not retried
  (``retry_exceptions=False``: student code cannot raise out of the executor, so such an exception is
  the grader's own). A notebook that killed its worker ``max_tries`` times, or any task that failed,
  comes back as a *fault*: autograde records the notebook as ungraded with the reason (never a 0).
* **Stopping.** Ctrl-C, SIGTERM, or an error on the driver cancels every task not yet finished
  (``ray.cancel(force=True)`` kills the worker, and bubblewrap's ``--die-with-parent`` its kernel).
* **Memory on the driver.** At most ``max_in_flight`` jobs are submitted at once; the next job is read
  from the course directory only when one finishes.
"""
import logging
import os

log = logging.getLogger("eep590.cluster")

LOCAL = "local"  # address meaning: start a Ray instance in this process, on this machine's cores
LOST_WORKER_ERRORS = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "OutOfMemoryError",
                      "ObjectLostError", "OwnerDiedError", "ObjectFetchTimedOutError")


def grade_on_worker(job):
    """The task body: ``(ExecutionResult or None, fault or None)`` for one job (runs on a worker)."""
    from .jobs import run_with_retries

    return run_with_retries(job)


def _short(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " ..."


class RayCluster:
    """Run notebook jobs as Ray tasks; pass it to :func:`.autograde.autograde` as ``cluster=``.

    ``address``: ``"auto"`` (the cluster this machine belongs to, from ``ray start``), ``"host:port"``
    or ``"ray://host:10001"`` (Ray Client), or ``"local"`` (start Ray here, on this machine's cores).
    If Ray is already initialized in this process, that connection is used. ``max_tries``: runs of a
    notebook whose worker or node dies before it is given up as a fault. ``runner``: the task body
    (default :func:`grade_on_worker`; tests inject others). ``runtime_env``: Ray's runtime environment
    for the tasks (for example ``{"env_vars": {"EEP590_DATA": "/data"}}``).
    """

    def __init__(self, address="auto", max_tries=3, runner=None, num_cpus=1, reserve_memory=False,
                 max_in_flight=None, runtime_env=None, poll_s=1.0, echo=None):
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.address = address or "auto"
        self.max_tries = int(max_tries)
        self.runner = runner or grade_on_worker
        self.num_cpus = num_cpus
        self.reserve_memory = reserve_memory
        self.max_in_flight = max_in_flight
        self.runtime_env = runtime_env
        self.poll_s = poll_s
        self.echo = echo or (lambda message: None)
        self._started_ray = False
        self._remote = None
        self.submitted = {}  # key -> the options its task was submitted with (for tests and logs)

    # -- connection ------------------------------------------------------------------------------------------
    def connect(self):
        if self.address == LOCAL:  # a one-machine instance stays on the loopback address (read when ray is imported)
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray

        if not ray.is_initialized():
            kwargs = {"log_to_driver": False, "runtime_env": self.runtime_env}
            if self.address == LOCAL:
                ray.init(include_dashboard=False, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
            self._started_ray = True
        if self._remote is None:
            self._remote = ray.remote(self.runner)
        return self

    def close(self):
        """Disconnect from Ray (and stop it if :meth:`connect` started it here)."""
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False
        self._remote = None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    def describe(self):
        """One line: the nodes alive and their CPUs and GPUs."""
        import ray

        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = sum(n["Resources"].get("CPU", 0) for n in nodes)
        gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        return f"Ray cluster: {len(nodes)} node(s), {cpus:g} CPU(s), {gpus:g} GPU(s)"

    # -- tasks -----------------------------------------------------------------------------------------------
    def options_for(self, job):
        """The Ray options of ``job``'s task."""
        options = {"num_cpus": self.num_cpus, "num_gpus": 1 if job.needs_gpu else 0,
                   "max_retries": self.max_tries - 1, "retry_exceptions": False,
                   "name": f"eep590:{job.student}/{job.notebook}"}
        if self.reserve_memory and job.limits.memory_bytes:
            options["memory"] = int(job.limits.memory_bytes)
        return options

    @staticmethod
    def _unschedulable(options):
        """Why no node alive could ever run a task with ``options`` (None when one can)."""
        import ray

        need = {"CPU": options.get("num_cpus") or 0, "GPU": options.get("num_gpus") or 0,
                "memory": options.get("memory") or 0}
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        if any(all(res.get(name, 0) >= amount for name, amount in need.items() if amount) for res in nodes):
            return None
        if need["GPU"] and not any(res.get("GPU", 0) for res in nodes):
            return ("this notebook needs a GPU to grade (notebook metadata eep590.gpu) and no node of the Ray "
                    "cluster has one: add a GPU node (`ray start --address ... --num-gpus 1`) and run autograde again")
        wanted = ", ".join(f"{name} {amount:g}" for name, amount in need.items() if amount)
        return f"no node of the Ray cluster has the resources this notebook's task needs ({wanted})"

    def _fault_of(self, error):
        import ray

        name = type(error).__name__
        if isinstance(error, ray.exceptions.TaskCancelledError):
            return "its task on the Ray cluster was cancelled"
        if isinstance(error, ray.exceptions.RayTaskError):  # the task body raised: the grader's error, not retried
            cause = error.cause if getattr(error, "cause", None) is not None else error
            return f"the grader failed on a Ray worker ({type(cause).__name__}: {_short(cause, 200)})"
        if name in LOST_WORKER_ERRORS or isinstance(error, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
            return (f"the Ray worker running it died on each of {self.max_tries} tries (last: {name}: "
                    f"{_short(error, 200)}); it was stopped there")
        return f"Ray could not run it ({name}: {_short(error, 200)})"

    def run(self, keys, job_of):
        """Yield ``(key, result, fault)`` as the notebooks of ``keys`` finish on the cluster."""
        import ray

        self.connect()
        self.echo(self.describe())
        cpus = int(ray.cluster_resources().get("CPU", 1))
        in_flight = self.max_in_flight or max(4, 2 * cpus)
        queue = list(keys)
        queue.reverse()  # pop() from the end takes them in order
        pending = {}  # ObjectRef -> key
        unschedulable = {}  # resources asked -> why no node can run them (asked of Ray once per run)
        finished = False
        try:
            while queue or pending:
                while queue and len(pending) < in_flight:
                    key = queue.pop()
                    try:
                        job = job_of(key)
                    except Exception as error:  # the staged notebook could not be read: only this one is lost
                        yield key, None, f"its job could not be prepared ({type(error).__name__}: {_short(error, 200)})"
                        continue
                    options = self.options_for(job)
                    self.submitted[key] = options
                    need = (options.get("num_cpus"), options.get("num_gpus"), options.get("memory"))
                    if need not in unschedulable:
                        unschedulable[need] = self._unschedulable(options)
                    why_not = unschedulable[need]
                    if why_not:
                        yield key, None, why_not
                        continue
                    pending[self._remote.options(**options).remote(job)] = key
                if not pending:
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_s)
                for ref in ready:
                    key = pending.pop(ref)
                    try:
                        result, fault = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        result, fault = None, self._fault_of(error)
                    yield key, result, fault
            finished = True
        finally:
            if not finished and pending:  # interrupted (Ctrl-C, SIGTERM) or the driver failed
                log.warning("cancelling %d Ray task(s) still running", len(pending))
                for ref in list(pending):
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:  # already finished or its node is gone
                        pass


def make_cluster(address, **kwargs):
    """A :class:`RayCluster` for the ``--ray`` option / ``GradingLimits.ray_address`` (None for "")."""
    if not address:
        return None
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError("--ray needs Ray: pip install ray (it is in the kit's dependencies)") from None
    return RayCluster(address, **kwargs)

