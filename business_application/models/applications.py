"""The dependency map: business applications, technical services and the dependencies between services."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from netbox.models import NetBoxModel

from ..choices import DependencyTypeChoices, ServiceTypeChoices

__all__ = ('BusinessApplication', 'ServiceDependency', 'TechnicalService')


class BusinessApplication(NetBoxModel):
    """A business application (identified by its appcode) built from technical services, devices and VMs."""

    appcode = models.CharField(verbose_name=_('appcode'), max_length=20, unique=True)
    name = models.CharField(verbose_name=_('name'), max_length=240)
    description = models.TextField(verbose_name=_('description'), blank=True)
    owner = models.CharField(verbose_name=_('owner'), max_length=100, blank=True)
    delegate = models.CharField(verbose_name=_('delegate'), max_length=100, blank=True)
    link = models.URLField(verbose_name=_('link'), blank=True)
    devices = models.ManyToManyField(to='dcim.Device', related_name='business_applications', blank=True)
    virtual_machines = models.ManyToManyField(
        to='virtualization.VirtualMachine', related_name='business_applications', blank=True
    )

    class Meta:
        ordering = ('appcode',)
        verbose_name = _('business application')
        verbose_name_plural = _('business applications')

    def __str__(self):
        return self.appcode

    def get_absolute_url(self):
        return reverse('plugins:business_application:businessapplication', args=[self.pk])


class TechnicalService(NetBoxModel):
    """A node of the dependency map: carried by devices, VMs and clusters, depended on by other services."""

    name = models.CharField(verbose_name=_('name'), max_length=240, unique=True)
    service_type = models.CharField(
        verbose_name=_('service type'),
        max_length=16,
        choices=ServiceTypeChoices,
        default=ServiceTypeChoices.TECHNICAL,
    )
    description = models.TextField(verbose_name=_('description'), blank=True)
    business_apps = models.ManyToManyField(
        to=BusinessApplication,
        related_name='technical_services',
        blank=True,
        verbose_name=_('business applications'),
    )
    devices = models.ManyToManyField(to='dcim.Device', related_name='technical_services', blank=True)
    vms = models.ManyToManyField(
        to='virtualization.VirtualMachine',
        related_name='technical_services',
        blank=True,
        verbose_name=_('virtual machines'),
    )
    clusters = models.ManyToManyField(to='virtualization.Cluster', related_name='technical_services', blank=True)

    class Meta:
        ordering = ('name',)
        verbose_name = _('technical service')
        verbose_name_plural = _('technical services')

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse('plugins:business_application:technicalservice', args=[self.pk])

    def get_service_type_color(self):
        return ServiceTypeChoices.colors.get(self.service_type)


class ServiceDependency(NetBoxModel):
    """The downstream service depends on the upstream one; redundancy edges sharing a name form one group."""

    name = models.CharField(verbose_name=_('name'), max_length=240)
    description = models.TextField(verbose_name=_('description'), blank=True)
    upstream_service = models.ForeignKey(
        to=TechnicalService,
        on_delete=models.CASCADE,
        related_name='downstream_dependencies',
        verbose_name=_('upstream service'),
    )
    downstream_service = models.ForeignKey(
        to=TechnicalService,
        on_delete=models.CASCADE,
        related_name='upstream_dependencies',
        verbose_name=_('downstream service'),
    )
    dependency_type = models.CharField(
        verbose_name=_('dependency type'),
        max_length=16,
        choices=DependencyTypeChoices,
        default=DependencyTypeChoices.NORMAL,
    )

    class Meta:
        ordering = ('name', 'pk')
        verbose_name = _('service dependency')
        verbose_name_plural = _('service dependencies')
        constraints = (
            models.UniqueConstraint(
                fields=('upstream_service', 'downstream_service'),
                name='business_application_servicedependency_unique_pair',
                violation_error_message=_('This dependency already exists.'),
            ),
            models.CheckConstraint(
                condition=~Q(upstream_service=F('downstream_service')),
                name='business_application_servicedependency_not_self',
                violation_error_message=_('A service cannot depend on itself.'),
            ),
        )

    def __str__(self):
        return f'{self.downstream_service} depends on {self.upstream_service}'

    def get_absolute_url(self):
        return reverse('plugins:business_application:servicedependency', args=[self.pk])

    def get_dependency_type_color(self):
        return DependencyTypeChoices.colors.get(self.dependency_type)

    def clean(self):
        super().clean()
        if self.upstream_service_id and self.upstream_service_id == self.downstream_service_id:
            raise ValidationError({'downstream_service': _('A service cannot depend on itself.')})
