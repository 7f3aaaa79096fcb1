variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Location of the repository."
  type        = string
}

variable "name" {
  description = "Repository id."
  type        = string
}

variable "labels" {
  description = "Labels of the repository."
  type        = map(string)
}
