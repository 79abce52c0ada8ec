from clinic_ai.celery import app
from clinic_ai.core.tasks import cpu_task, gpu_task


def _queue_of(task) -> str:
    route = app.amqp.router.route({}, task.name, args=(), kwargs={}, task_type=task)
    return route["queue"].name


def test_each_decorator_routes_to_its_queue():
    @cpu_task(name="tests.cpu_probe")
    def cpu_probe():
        return None

    @gpu_task(name="tests.gpu_probe")
    def gpu_probe():
        return None

    assert _queue_of(cpu_probe) == "cpu"
    assert _queue_of(gpu_probe) == "gpu"
    assert cpu_probe.acks_late and cpu_probe.reject_on_worker_lost


def test_queues_have_their_own_routing_keys():
    queues = app.amqp.queues
    assert {name: queues[name].routing_key for name in ("cpu", "gpu")} == {"cpu": "cpu", "gpu": "gpu"}
