"""The scheduler: the periodic jobs run by one elected process at a time.

``lease`` elects it in the ledger, ``jobs`` claims each job's runs there,
``periodic`` lists what leadrelay runs on a schedule, ``scheduler`` is the loop
every candidate runs, ``in_worker`` starts that loop in each Celery worker.
"""
