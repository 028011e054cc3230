"""Airflow hooks and operators of Tormenta (imported by DAGs and the plugin, never at Spark runtime)."""
