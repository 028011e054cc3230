"""Each event kind's business rules as Spark SQL, producing its HBase mutations: one module per kind, shared by the micro-batch and the batch jobs."""
