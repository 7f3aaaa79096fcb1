# PostgreSQL for MLflow's tracking and registry store: private IP only, mutual TLS required, IAM database
# authentication (MLflow logs in as its Google SA through the Cloud SQL Auth Proxy: no password),
# automated backups with point-in-time recovery, connection and statement logging.

resource "google_sql_database_instance" "mlflow" {
  project             = var.project_id
  name                = var.name
  region              = var.region
  database_version    = "POSTGRES_18"
  deletion_protection = var.deletion_protection

  settings {
    tier                        = var.tier
    edition                     = "ENTERPRISE"
    availability_type           = var.high_availability ? "REGIONAL" : "ZONAL"
    disk_type                   = "PD_SSD"
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
      # Only clients with a certificate the instance trusts: the Auth Proxy (mTLS, ephemeral certs).
      ssl_mode                                      = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = 14
      }
    }

    maintenance_window {
      day  = 7
      hour = 3
    }

    insights_config {
      query_insights_enabled = true
    }

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_duration"
      value = "on"
    }

    database_flags {
      name  = "log_hostname"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    database_flags {
      name  = "log_temp_files"
      value = "0"
    }

    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    database_flags {
      name  = "log_min_messages"
      value = "error"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    database_flags {
      name  = "log_statement"
      value = "ddl"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }
  }
}

resource "google_sql_database" "mlflow" {
  project  = var.project_id
  name     = "mlflow"
  instance = google_sql_database_instance.mlflow.name
}

# Users and grants of MLflow's basic-auth app (helm/sentimentops mlflow.auth.databaseName): its own
# database, because the auth app and the tracking store each keep an alembic_version table.
resource "google_sql_database" "mlflow_auth" {
  project  = var.project_id
  name     = "mlflow_auth"
  instance = google_sql_database_instance.mlflow.name
}

# The IAM database user of MLflow's Google SA. It still needs privileges on the database, granted once
# by an admin (docs/operations.md, "Database grants").
resource "google_sql_user" "mlflow" {
  project  = var.project_id
  name     = trimsuffix(var.iam_user_email, ".gserviceaccount.com")
  instance = google_sql_database_instance.mlflow.name
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}
